"""Dense optical flow (OpenCV DIS, on the CPU) and flow-guided warping (on tensors, any device).

Conventions: a flow is ``(B,2,h,w)`` in pixels, channel 0 = x (columns), 1 = y (rows).
``flow_ab`` maps frame A onto frame B: ``A(p) ≈ B(p + flow_ab(p))``, so ``warp(B, flow_ab)``
resamples B onto A's pixel grid (backward warping, no holes).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.errors import InputError

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowConfig:
    preset: str = "medium"
    scale: float = 1.0  # flow computed at this fraction of the frame size, then scaled up
    # Overrides of the DIS preset (None: the preset's own). DIS "medium" searches patches down to
    # pyramid level 1 (half size) only; finest_scale=0 searches at full size (slower, more accurate).
    finest_scale: int | None = None
    patch_stride: int | None = None
    refine_iterations: int | None = None  # variational refinement iterations per level

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"unknown optical-flow preset {self.preset!r}: {', '.join(PRESETS)}")
        if not 0.05 <= self.scale <= 1.0:
            raise InputError(f"optical-flow scale {self.scale} is out of range (0.05..1)")
        for name in ("finest_scale", "patch_stride", "refine_iterations"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < (1 if name == "patch_stride" else 0)):
                raise InputError(f"optical-flow {name} must be a non-negative integer, not {value!r}")

    @classmethod
    def parse(cls, spec: str) -> FlowConfig:
        """``PRESET@SCALE[:fN][:sN][:vN]`` (finest scale, patch stride, refinement iterations)."""
        head, *options = spec.split(":")
        preset, _, scale = head.partition("@")
        keys = {"f": "finest_scale", "s": "patch_stride", "v": "refine_iterations"}
        extra: dict[str, int] = {}
        for option in options:
            if option[:1] not in keys or not option[1:].isdigit():
                raise InputError(f"bad optical-flow option {option!r} in {spec!r} (fN, sN or vN)")
            extra[keys[option[0]]] = int(option[1:])
        try:
            return cls(preset, float(scale) if scale else 1.0, **extra)
        except ValueError:
            raise InputError(f"bad optical-flow spec {spec!r} (PRESET@SCALE[:fN][:sN][:vN])") from None

    def __str__(self) -> str:
        text = f"{self.preset}@{self.scale:g}"
        for key, name in (("f", "finest_scale"), ("s", "patch_stride"), ("v", "refine_iterations")):
            if getattr(self, name) is not None:
                text += f":{key}{getattr(self, name)}"
        return text


class FlowEstimator:
    """DIS optical flow between two single-channel uint8 images of one size.

    Holds its own OpenCV object (not thread-safe; one estimator per stream).
    """

    def __init__(self, config: FlowConfig = FlowConfig()) -> None:
        self.config = config
        self._dis = cv2.DISOpticalFlow_create(PRESETS[config.preset])
        if config.finest_scale is not None:
            self._dis.setFinestScale(config.finest_scale)
        if config.patch_stride is not None:
            self._dis.setPatchStride(config.patch_stride)
        if config.refine_iterations is not None:
            self._dis.setVariationalRefinementIterations(config.refine_iterations)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b`` (both (h,w) uint8) -> (h,w,2) float32 pixels at full size."""
        return self.upscale(self.calc(self.scaled(a), self.scaled(b)), a.shape)

    def working_size(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(h, w) the flow is computed at for frames of ``shape``."""
        h, w = shape[:2]
        return max(8, round(h * self.config.scale)), max(8, round(w * self.config.scale))

    def scaled(self, image: np.ndarray) -> np.ndarray:
        """``image`` area-resized to the working size (unchanged at scale 1)."""
        sh, sw = self.working_size(image.shape)
        if (sh, sw) == image.shape[:2]:
            return image
        return cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)

    def calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow between two images already at the working size, in working-size pixels."""
        return _calc_padded(self._dis, a, b)

    @staticmethod
    def upscale(flow: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A working-size flow resized (bilinear) and rescaled to frames of ``shape``."""
        h, w = shape[:2]
        sh, sw = flow.shape[:2]
        if (sh, sw) == (h, w):
            return flow
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / sw
        flow[..., 1] *= h / sh
        return flow


# DIS refuses images whose pyramid would be too small ("width or height >= 12": a 200x4 strip
# fails), and some strips under ~32 px crash it outright (12x100 and, in the pipeline, 16x176
# segfault in OpenCV 5.1): very thin frames (960x32 film at render size, 4000x16) are edge-padded
# up to this side before the flow is computed, and the flow is cropped back.
DIS_MIN_SIDE = 32


def _calc_padded(dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    h, w = a.shape
    ph, pw = max(0, DIS_MIN_SIDE - h), max(0, DIS_MIN_SIDE - w)
    if not (ph or pw):
        return dis.calc(a, b, None)
    pad = lambda x: cv2.copyMakeBorder(x, 0, ph, 0, pw, cv2.BORDER_REPLICATE)  # noqa: E731
    return np.ascontiguousarray(dis.calc(pad(a), pad(b), None)[:h, :w])


def to_uint8(luma: torch.Tensor) -> np.ndarray:
    """(B,1,h,w) luma in [0,1] on any device -> (B,h,w) uint8 on the CPU (what OpenCV wants)."""
    return (luma[:, 0].detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def flow_to_tensor(flow: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h,w,2) numpy flow -> (1,2,h,w) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1)))[None].to(device)


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1,2,h,w) pixel coordinates x, y (memoised: the same few frame sizes come back every frame)."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([xs, ys])[None]


def _sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Pixel flow (B,2,h,w) -> normalised sampling grid (B,h,w,2) for grid_sample (align_corners=True)."""
    _, _, h, w = flow.shape
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=flow.device, dtype=flow.dtype).view(
        1, 2, 1, 1
    )
    return ((_pixel_grid(h, w, flow.device, flow.dtype) + flow) * scale - 1.0).permute(0, 2, 3, 1)


class Motion:
    """A flow prepared once for warping: several images warped by one flow (luma, chroma,
    confidences) share the sampling maps. On the CPU warping is OpenCV's ``remap`` (about twice
    torch's ``grid_sample`` there; sub-pixel positions are quantised to 1/32 pixel, far below what
    colour carried between frames can show); elsewhere, or with ``exact`` (the metrics), torch's
    ``grid_sample``. Both clamp at the border."""

    def __init__(self, flow: torch.Tensor, exact: bool = False) -> None:
        if flow.dim() != 4 or flow.shape[1] != 2:
            raise ValueError(f"flow must be (B,2,h,w), got {tuple(flow.shape)}")
        self.flow: torch.Tensor | None = flow  # (B,2,h,w) pixels; None once only warping is left
        self.shape = (int(flow.shape[-2]), int(flow.shape[-1]))
        if flow.device.type == "cpu" and flow.shape[0] == 1 and not exact:
            coords = (_pixel_grid(*self.shape, flow.device, torch.float32) + flow.float())[0].numpy()
            self._maps: tuple[np.ndarray, np.ndarray] | None = (
                np.ascontiguousarray(coords[0]),
                np.ascontiguousarray(coords[1]),
            )
            self._grid: torch.Tensor | None = None
        else:
            self._maps, self._grid = None, _sample_grid(flow)

    @classmethod
    def of(cls, flow: torch.Tensor, exact: bool = False) -> Motion:
        return cls(flow, exact)

    def without_flow(self) -> Motion:
        """This motion holding only what warping needs (less memory to keep)."""
        self.flow = None
        return self

    def warp(self, image: torch.Tensor) -> torch.Tensor:
        """``out(p) = image(p + flow(p))``, bilinear, border-clamped; (B,C,h,w) like ``image``."""
        if (
            self._maps is not None
            and image.device.type == "cpu"
            and image.dtype == torch.float32
            and image.shape[0] == 1
            and image.shape[1] <= 4
        ):
            planes = np.ascontiguousarray(image[0].permute(1, 2, 0).numpy())
            out = cv2.remap(planes, self._maps[0], self._maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            out = out.reshape(*self.shape, image.shape[1])
            return torch.from_numpy(out).permute(2, 0, 1)[None].contiguous()
        grid = self.grid
        grid = grid if grid.dtype == image.dtype and grid.device == image.device else grid.to(image.device, image.dtype)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)

    @property
    def grid(self) -> torch.Tensor:
        """(B,h,w,2) normalised sampling grid, for grid_sample."""
        if self._grid is None:
            assert self._maps is not None
            h, w = self.shape
            coords = torch.from_numpy(np.stack(self._maps))[None]
            scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)]).view(1, 2, 1, 1)
            self._grid = (coords * scale - 1.0).permute(0, 2, 3, 1)
        return self._grid

    def inside(self) -> torch.Tensor:
        """(B,1,h,w): 1 where the sample point lies in the frame (else it has no source)."""
        if self._maps is not None:
            h, w = self.shape
            mx, my = self._maps
            ok = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
            return torch.from_numpy(ok.astype(np.float32))[None, None]
        return (self.grid.abs().amax(-1, keepdim=True) <= 1.0).permute(0, 3, 1, 2).to(self.grid.dtype)


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward-warp ``image`` (B,C,h,w) by ``flow`` (B,2,h,w): ``out(p) = image(p + flow(p))``.

    Returns (warped, inside): ``inside`` (B,1,h,w) is 1 where the sample point lies in the frame
    (pixels that come from outside the frame have no source and must not be trusted).
    """
    motion = Motion.of(flow.to(image.dtype), exact=True)
    return motion.warp(image), motion.inside()


def fb_inconsistency(
    flow_ab: torch.Tensor, flow_ba: torch.Tensor, motion_ab: Motion | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward–backward check (Sundaram et al. 2010; Ruder et al. 2016) on A's grid.

    Returns (ratio, inside): ``ratio`` (B,1,h,w) is |flow_ab + flow_ba(p + flow_ab)|² divided by
    its tolerance 0.01·(|flow_ab|² + |flow_ba(...)|²) + 0.5; a pixel with ratio > 1 is occluded
    (it has no consistent match in B) or badly matched. ``motion_ab``: ``Motion.of(flow_ab)``
    when the caller has it already.
    """
    motion = motion_ab or Motion.of(flow_ab, exact=True)
    back, inside = motion.warp(flow_ba), motion.inside()
    err = (flow_ab + back).square().sum(1, keepdim=True)
    tol = 0.01 * (flow_ab.square().sum(1, keepdim=True) + back.square().sum(1, keepdim=True)) + 0.5
    return err / tol, inside


def motion_boundaries(flow: torch.Tensor) -> torch.Tensor:
    """Ruder et al. (2016) motion-boundary test, as Lai et al. (2018) use it: 1 where
    |∇u|² + |∇v|² > 0.01·|flow|² + 0.002 (forward differences), else 0. (B,2,h,w) -> (B,1,h,w)."""
    dx = F.pad(flow[..., :, 1:] - flow[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(flow[..., 1:, :] - flow[..., :-1, :], (0, 0, 0, 1))
    grad = (dx.square() + dy.square()).sum(1, keepdim=True)
    return (grad > 0.01 * flow.square().sum(1, keepdim=True) + 0.002).to(flow.dtype)
