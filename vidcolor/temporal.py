"""Temporal stage: what turns per-frame chroma predictions into a film's chroma.

A stage sees each batch of render-size luma frames in order and returns their chroma. It decides
which frames the model must colour: it is handed ``predict`` (render luma -> CbCr) and calls it on
the frames it needs, so keyframe mode can skip the model entirely on most frames.
State is O(1) frames (the previous frame's luma and output chroma), never the film.

``FlowStage`` (the default): dense optical flow (OpenCV DIS, CPU) between consecutive render-size
luma frames; the previous OUTPUT chroma is warped onto the current frame and blended with the
fresh prediction, weighted by a per-pixel confidence (forward–backward flow consistency ×
luminance warping error) times ``strength``. Occluded or newly visible pixels take the fresh
prediction; at a scene cut the state is dropped so no chroma crosses the cut. In keyframe mode
the model runs only on key frames and the frames between carry the warped chroma forward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.bilateral import slice_grid
from vidcolor.errors import InputError
from vidcolor.flow import FlowConfig, FlowEstimator, fb_inconsistency, flow_to_tensor, to_uint8, warp

# The model: render-size luma (B,1,h,w) -> CbCr (B,2,h,w); called as predict(luma, hints) with
# the frames' hint planes (B,3,h,w) when the caller gave any (vidcolor.hints), else predict(luma).
Predict = Callable[..., torch.Tensor]
AUTO = "auto"


def parse_keyframe_interval(value: int | str) -> int | str:
    """``--keyframe-interval`` value -> a positive int or ``"auto"``; anything else is an InputError."""
    if isinstance(value, bool):
        raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if not text.isdigit():
            raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
        value = int(text)
    if not isinstance(value, int) or value < 1:
        raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
    return value


@dataclass(frozen=True)
class TemporalConfig:
    enabled: bool = True
    strength: float = 0.8  # weight of the warped previous chroma where the flow is trusted
    keyframe_interval: int | str = 1  # 1: model on every frame; N; or "auto"
    # Flow: DIS at a fraction of the render size (chroma is low-frequency; see bench_temporal.py).
    flow_preset: str = "fast"
    flow_scale: float = 0.5
    # Confidence = fb-consistency × exp(-(luma warp error / photometric_sigma)²).
    photometric_sigma: float = 0.06
    # Scene cut: luma-histogram distance (0..1) above cut_histogram, or mean confidence below
    # cut_confidence (nothing in the new frame matches the old one).
    cut_histogram: float = 0.45
    cut_confidence: float = 0.15
    # "auto" keyframes: a new key frame when less than auto_min_tracked of the frame is still
    # confidently tracked back to the last key frame, and at least every auto_max_gap frames.
    auto_min_tracked: float = 0.75
    auto_max_gap: int = 12

    def __post_init__(self) -> None:
        # Normalise here so every caller (CLI strings, TOML, Python) gets one validated form.
        object.__setattr__(self, "keyframe_interval", parse_keyframe_interval(self.keyframe_interval))
        try:
            strength = float(self.strength)
        except (TypeError, ValueError):
            raise InputError(f"--temporal-strength must be a number between 0 and 1, not {self.strength!r}") from None
        if not 0.0 <= strength <= 1.0:
            raise InputError(f"--temporal-strength must be between 0 and 1, not {self.strength!r}")
        object.__setattr__(self, "strength", strength)
        FlowConfig(self.flow_preset, self.flow_scale)  # validates both
        if self.photometric_sigma <= 0:
            raise InputError("photometric_sigma must be positive")
        if not (0 <= self.cut_histogram <= 1 and 0 <= self.cut_confidence <= 1 and 0 <= self.auto_min_tracked <= 1):
            raise InputError("cut_histogram, cut_confidence and auto_min_tracked must lie in [0, 1]")
        if self.auto_max_gap < 1:
            raise InputError("auto_max_gap must be at least 1")

    @property
    def flow(self) -> FlowConfig:
        return FlowConfig(self.flow_preset, self.flow_scale)


class ChromaStage(Protocol):
    def process(self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None) -> torch.Tensor:
        """(B,1,h,w) render-size luma of consecutive frames -> (B,2,h,w) CbCr for them.

        ``hints`` (B,3,h,w): a person's colour hints for some of the frames (zeros elsewhere). A
        hinted frame is an anchor: the model colours it with its hints and that colour is kept
        as it is, then carried on along the motion like any other frame's."""
        ...

    def reset(self) -> None:
        """Forget the previous frame (a new film, or a seek)."""
        ...


class PerFrameStage:
    """No temporal processing: the model colours every frame on its own (``--no-temporal``)."""

    def process(self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None) -> torch.Tensor:
        return predict(luma) if hints is None else predict(luma, hints)

    def reset(self) -> None:
        pass


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance between two uint8 images' normalised grey histograms: 0 same, 1 disjoint."""
    ha = np.bincount(a.ravel() >> (8 - int(np.log2(bins))), minlength=bins) / a.size
    hb = np.bincount(b.ravel() >> (8 - int(np.log2(bins))), minlength=bins) / b.size
    return 0.5 * float(np.abs(ha - hb).sum())


@dataclass
class Link:
    """How a frame relates to the one before it (None before the first frame of a shot)."""

    cut: bool
    flow: torch.Tensor | None = None  # (1,2,h,w) current -> previous, on the device
    confidence: torch.Tensor | None = None  # (1,1,h,w) in [0,1]: trust in the warped previous chroma


def _splat(values: torch.Tensor, weight: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted cell sums (pooled, then a 3×3 spatial blur) over the last two dims: numerator, denominator.

    4-D (B,C,h,w) or 5-D (B,C,bins,h,w) inputs (the bins dimension is folded into the channels:
    2-D pooling is much faster than 3-D on the CPU).
    """

    def pool_blur(x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = F.avg_pool2d(x.reshape(shape[0], -1, *shape[-2:]), cell, ceil_mode=True)
        y = F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=False)
        return y.reshape(*shape[:-2], *y.shape[-2:])

    return pool_blur(values * weight), pool_blur(weight)


def fill_holes(chroma: torch.Tensor, confidence: torch.Tensor, luma: torch.Tensor, cell: int = 8, bins: int = 8) -> torch.Tensor:
    """Replace untrusted pixels by the chroma of trusted pixels nearby AND of similar luma.

    Used between key frames, where newly visible pixels have no fresh prediction and their warped
    value would smear the occluder's colour onto them. A bilateral grid (Chen et al. 2007):
    confidence-weighted chroma is splatted into ``cell``-pixel cells × ``bins`` luma bins, blurred,
    and read back trilinearly at each pixel's position and luma, O(pixels). Where no trusted pixel
    of similar luma is near, a luma-blind neighbourhood average, then the frame's mean, are used.
    """
    n, c, h, w = chroma.shape
    index = (luma * bins).long().clamp(0, bins - 1)  # (B,1,h,w)
    onehot = (index == torch.arange(bins, device=luma.device).view(1, bins, 1, 1)).to(chroma.dtype)
    num, den = _splat(chroma.unsqueeze(2), (confidence * onehot).unsqueeze(1), cell)  # (B,C|1,bins,hc,wc)
    # Blur across neighbouring luma bins too: a soft rather than a hard brightness edge.
    num = F.avg_pool3d(num, (3, 1, 1), stride=1, padding=(1, 0, 0), count_include_pad=False)
    den = F.avg_pool3d(den, (3, 1, 1), stride=1, padding=(1, 0, 0), count_include_pad=False)
    picked = slice_grid(torch.cat([num, den], 1), luma)  # (B,C+1,h,w)
    num_px, den_px = picked[:, :c], picked[:, c:]

    blind_num, blind_den = _splat(chroma, confidence, cell)
    blind_num = F.interpolate(blind_num, size=(h, w), mode="bilinear", align_corners=False)
    blind_den = F.interpolate(blind_den, size=(h, w), mode="bilinear", align_corners=False)
    global_mean = (chroma * confidence).sum((2, 3), keepdim=True) / confidence.sum((2, 3), keepdim=True).clamp_min(1e-6)
    local = torch.where(blind_den > 1e-3, blind_num / blind_den.clamp_min(1e-3), global_mean.expand_as(chroma))
    local = torch.where(den_px > 1e-3, num_px / den_px.clamp_min(1e-3), local)
    return confidence * chroma + (1.0 - confidence) * local


class FlowStage:
    """Flow-guided chroma propagation with confidence-weighted blending and scene-cut resets."""

    def __init__(self, config: TemporalConfig = TemporalConfig()) -> None:
        self.config = config
        self._flow = FlowEstimator(config.flow)
        self.frames = 0  # frames processed since the last reset
        self.predicted = 0  # of which the model coloured
        self.cuts = 0  # scene cuts detected
        self.reset()

    def reset(self) -> None:
        self._prev_u8: np.ndarray | None = None
        self._prev_luma: torch.Tensor | None = None  # (1,1,h,w)
        self._prev_chroma: torch.Tensor | None = None  # (1,2,h,w): the previous OUTPUT
        self._tracked: torch.Tensor | None = None  # (1,1,h,w): confidence chained since the last key frame
        self._since_key = 0

    # -- geometry (luma only: it never depends on chroma, so a whole batch is linked before the model runs)
    def _link(self, prev_u8: np.ndarray, cur_u8: np.ndarray, prev: torch.Tensor, cur: torch.Tensor) -> Link:
        if prev_u8.shape != cur_u8.shape:
            return Link(cut=True)
        if histogram_distance(prev_u8, cur_u8) > self.config.cut_histogram:
            return Link(cut=True)
        device = cur.device
        back = flow_to_tensor(self._flow(cur_u8, prev_u8), device)  # current -> previous
        fwd = flow_to_tensor(self._flow(prev_u8, cur_u8), device)  # previous -> current
        ratio, inside = fb_inconsistency(back, fwd)
        warped_luma, _ = warp(prev, back)
        # A light blur keeps film grain from reading as mismatch.
        err = F.avg_pool2d((cur - warped_luma).abs(), 3, stride=1, padding=1, count_include_pad=False)
        confidence = torch.exp(-ratio.square()) * torch.exp(-(err / self.config.photometric_sigma).square()) * inside
        if float(confidence.mean()) < self.config.cut_confidence:
            return Link(cut=True)
        return Link(cut=False, flow=back, confidence=confidence)

    def _is_key(self, link: Link | None) -> bool:
        interval = self.config.keyframe_interval
        if link is None or link.cut:
            self._tracked = None
            return True
        if interval == 1:
            return True
        if interval != AUTO:
            return self._since_key + 1 >= int(interval)
        assert link.flow is not None and link.confidence is not None
        tracked = link.confidence if self._tracked is None else warp(self._tracked, link.flow)[0] * link.confidence
        self._tracked = tracked
        return float(tracked.mean()) < self.config.auto_min_tracked or self._since_key + 1 >= self.config.auto_max_gap

    def process(self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None) -> torch.Tensor:
        if luma.dim() != 4 or luma.shape[1] != 1:
            raise InputError(f"temporal stage expects (B,1,h,w) luma, got {tuple(luma.shape)}")
        n = luma.shape[0]
        if n == 0:
            return luma.new_zeros((0, 2, *luma.shape[-2:]))
        anchors = set(torch.nonzero(hints[:, 2].flatten(1).amax(1) > 0).flatten().tolist()) if hints is not None else set()
        small = to_uint8(luma)
        links: list[Link | None] = []
        keys: list[bool] = []
        prev_u8, prev = self._prev_u8, self._prev_luma
        for i in range(n):
            cur = luma[i : i + 1]
            link = None if prev_u8 is None or prev is None else self._link(prev_u8, small[i], prev, cur)
            key = self._is_key(link) or i in anchors
            if key:
                self._tracked = torch.ones_like(cur)
                self._since_key = 0
            else:
                self._since_key += 1
            links.append(link)
            keys.append(key)
            prev_u8, prev = small[i], cur

        key_idx = [i for i, k in enumerate(keys) if k]
        fresh = None
        if key_idx:  # one batched model call
            fresh = predict(luma[key_idx]) if hints is None else predict(luma[key_idx], hints[key_idx])
        fresh_of = {i: j for j, i in enumerate(key_idx)}

        out = torch.empty((n, 2, *luma.shape[-2:]), device=luma.device, dtype=torch.float32)
        prev_chroma = self._prev_chroma
        for i, link in enumerate(links):
            new = fresh[fresh_of[i]].unsqueeze(0).float() if fresh is not None and i in fresh_of else None
            if link is None or link.cut or prev_chroma is None or i in anchors:
                assert new is not None  # a shot's first frame is always a key frame
                chroma = new
                self.cuts += int(link is not None and link.cut)
            else:
                assert link.flow is not None and link.confidence is not None
                warped, _ = warp(prev_chroma, link.flow)
                if new is not None:
                    weight = self.config.strength * link.confidence
                    chroma = torch.lerp(new, warped, weight)
                else:
                    chroma = fill_holes(warped, link.confidence, luma[i : i + 1])
            out[i : i + 1] = chroma
            prev_chroma = chroma

        self._prev_u8, self._prev_luma, self._prev_chroma = small[-1].copy(), luma[-1:].clone(), prev_chroma
        self.frames += n
        self.predicted += len(key_idx)
        return out


def build_stage(config: TemporalConfig) -> ChromaStage:
    if not config.enabled:
        return PerFrameStage()
    return FlowStage(config)
