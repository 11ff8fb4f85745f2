"""Dense optical flow (OpenCV DIS, on the CPU) and flow-guided warping (on tensors, any device).

Conventions: a flow is ``(B,2,h,w)`` in pixels, channel 0 = x (columns), 1 = y (rows).
``flow_ab`` maps frame A onto frame B: ``A(p) ≈ B(p + flow_ab(p))``, so ``warp(B, flow_ab)``
resamples B onto A's pixel grid (backward warping, no holes).
"""

from __future__ import annotations

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
        h, w = a.shape
        scale = self.config.scale
        sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
        if (sw, sh) == (w, h):
            return self._calc(a, b)
        a_s = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
        b_s = cv2.resize(b, (sw, sh), interpolation=cv2.INTER_AREA)
        flow = cv2.resize(self._calc(a_s, b_s), (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / sw
        flow[..., 1] *= h / sh
        return flow

    def _calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _calc_padded(self._dis, a, b)


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


def _sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Pixel flow (B,2,h,w) -> normalised sampling grid (B,h,w,2) for grid_sample (align_corners=True)."""
    b, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    y = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack([x, y], dim=-1)


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward-warp ``image`` (B,C,h,w) by ``flow`` (B,2,h,w): ``out(p) = image(p + flow(p))``.

    Returns (warped, inside): ``inside`` (B,1,h,w) is 1 where the sample point lies in the frame
    (pixels that come from outside the frame have no source and must not be trusted).
    """
    grid = _sample_grid(flow.to(image.dtype))
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = ((grid.abs() <= 1.0).all(dim=-1, keepdim=True)).permute(0, 3, 1, 2).to(image.dtype)
    return warped, inside


def fb_inconsistency(flow_ab: torch.Tensor, flow_ba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward–backward check (Sundaram et al. 2010; Ruder et al. 2016) on A's grid.

    Returns (ratio, inside): ``ratio`` (B,1,h,w) is |flow_ab + flow_ba(p + flow_ab)|² divided by
    its tolerance 0.01·(|flow_ab|² + |flow_ba(...)|²) + 0.5; a pixel with ratio > 1 is occluded
    (it has no consistent match in B) or badly matched.
    """
    back, inside = warp(flow_ba, flow_ab)
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
