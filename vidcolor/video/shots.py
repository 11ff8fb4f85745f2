"""Shots: how each frame relates to the one before it, and where the film cuts.

The shot is the unit of colour: nothing is carried across a cut. ``ShotDetector`` links each
render-size luma frame to the previous one with dense optical flow in both directions (OpenCV
DIS) and a per-pixel trust in each warp (forward–backward consistency × luminance warping
error); a cut is a jump in the luma histogram or a frame that almost nothing of the previous one
matches. The temporal stage and ``vidcolor keyframes`` share it, so they agree on the shots.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vidcolor.flow import FlowConfig, FlowEstimator, Motion, flow_to_tensor


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance between two uint8 images' normalised grey histograms: 0 same, 1 disjoint."""
    ha = np.bincount(a.ravel() >> (8 - int(np.log2(bins))), minlength=bins) / a.size
    hb = np.bincount(b.ravel() >> (8 - int(np.log2(bins))), minlength=bins) / b.size
    return 0.5 * float(np.abs(ha - hb).sum())


@dataclass
class Link:
    """How a frame relates to the one before it. ``cut``: it starts a new shot (no flow then)."""

    cut: bool
    back: Motion | None = None  # flow current -> previous: warps the previous frame onto this one
    forward: Motion | None = None  # flow previous -> current: warps this frame onto the previous one
    confidence: torch.Tensor | None = (
        None  # (1,1,h,w) in [0,1], on this frame's grid: trust in the previous frame warped here
    )
    back_confidence: torch.Tensor | None = (
        None  # (1,1,h,w), on the previous frame's grid: trust in this frame warped there
    )


@dataclass(frozen=True)
class ShotConfig:
    flow: FlowConfig = FlowConfig("medium", 0.5)
    photometric_sigma: float = 0.12  # luma warp error (0..1) at which trust falls to 1/e
    cut_histogram: float = 0.45  # histogram distance (0..1) above which the frame is a cut
    cut_confidence: float = 0.15  # mean trust below which the frame is a cut


@functools.lru_cache(maxsize=8)
def _pixel_coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates (read-only: shared between calls of one size)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _square_norm(v: np.ndarray) -> np.ndarray:
    """|v|² of an (h,w,2) field (two planes added: numpy's sum over a length-2 axis is slow)."""
    x, y = v[..., 0], v[..., 1]
    return x * x + y * y


def _trust(
    flow_ab: np.ndarray, flow_ba: np.ndarray, luma_a: np.ndarray, luma_b: np.ndarray, sigma: float
) -> np.ndarray:
    """Trust (A's grid, (h,w) float32 in [0,1]) in B warped onto A by ``flow_ab``: forward–backward
    consistency (Sundaram et al. 2010; the tolerance of vidcolor.flow.fb_inconsistency) × luma
    match × inside the frame. All at the flow's working size, in OpenCV: trust is smooth, and
    this is the stage's per-pair cost."""
    h, w = luma_a.shape
    xs, ys = _pixel_coords(h, w)
    mx, my = xs + flow_ab[..., 0], ys + flow_ab[..., 1]
    back = cv2.remap(flow_ba, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err_fb = _square_norm(flow_ab + back)
    tol = 0.01 * (_square_norm(flow_ab) + _square_norm(back)) + 0.5
    warped = cv2.remap(luma_b, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # A light blur keeps film grain from reading as mismatch.
    err = cv2.blur(np.abs(luma_a - warped), (3, 3), borderType=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return np.exp(-((err_fb / tol) ** 2 + (err / sigma) ** 2)) * inside


class ShotDetector:
    """Links consecutive frames of one stream; holds its own flow estimator (one per stream)."""

    def __init__(self, config: ShotConfig = ShotConfig()) -> None:
        self.config = config
        self._flow = FlowEstimator(config.flow)

    def link(
        self, prev_u8: np.ndarray, cur_u8: np.ndarray, prev: torch.Tensor, cur: torch.Tensor, both_ways: bool = True
    ) -> Link:
        """Link frame ``cur_u8`` ((h,w) uint8 at render size) to ``prev_u8``. ``prev``/``cur`` are
        the same frames as (1,1,h,w) tensors: the link's tensors are made on their device.

        ``both_ways`` also computes the trust in ``cur`` warped back onto ``prev`` (for carrying
        colour backwards in time); the flows are needed for the forward trust anyway."""
        if prev_u8.shape != cur_u8.shape:
            return Link(cut=True)
        if histogram_distance(prev_u8, cur_u8) > self.config.cut_histogram:
            return Link(cut=True)
        device = cur.device
        shape = cur_u8.shape
        prev_s, cur_s = self._flow.scaled(prev_u8), self._flow.scaled(cur_u8)
        back_s = self._flow.calc(cur_s, prev_s)  # current -> previous, at the working size
        fwd_s = self._flow.calc(prev_s, cur_s)
        prev_f, cur_f = prev_s.astype(np.float32) / 255.0, cur_s.astype(np.float32) / 255.0
        sigma = self.config.photometric_sigma
        confidence = _trust(back_s, fwd_s, cur_f, prev_f, sigma)
        if float(confidence.mean()) < self.config.cut_confidence:
            return Link(cut=True)
        back = Motion(flow_to_tensor(self._flow.upscale(back_s, shape), device)).without_flow()
        if not both_ways:
            return Link(cut=False, back=back, confidence=_full_size(confidence, shape, device))
        back_confidence = _trust(fwd_s, back_s, prev_f, cur_f, sigma)
        forward = Motion(flow_to_tensor(self._flow.upscale(fwd_s, shape), device)).without_flow()
        return Link(
            cut=False,
            back=back,
            forward=forward,
            confidence=_full_size(confidence, shape, device),
            back_confidence=_full_size(back_confidence, shape, device),
        )


def _full_size(trust: np.ndarray, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Working-size trust -> (1,1,h,w) tensor at the frame's size on ``device``."""
    h, w = shape[:2]
    if trust.shape != (h, w):
        trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(trust, dtype=np.float32))[None, None].to(device)
