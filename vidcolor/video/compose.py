"""The compose step of a film: the temporal stage's chroma at render size -> the stream's U, V
planes beside each frame's ORIGINAL Y plane, ready for the encoder."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch

from vidcolor.compose import upsample_chroma
from vidcolor.media.frames import ComposedBatch
from vidcolor.video.frames import FrameBatch


def _code_range(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """(scale, mid, lowest, highest) chroma code values of a stream."""
    mid = float(1 << (bits - 1))
    if full_range:
        return float((1 << bits) - 1), mid, 0.0, float((1 << bits) - 1)
    s = float(1 << (bits - 8))
    return 224.0 * s, mid, 16.0 * s, 240.0 * s


def chroma_planes(chroma: torch.Tensor, size: tuple[int, int], bits: int, full_range: bool) -> np.ndarray:
    """CbCr (B,2,h,w) at render size -> the stream's U, V planes (B,2,H,W) of ``size``: bilinear
    upsampling (align_corners=False, as vidcolor.compose.upsample_chroma) and ``quantise_chroma``.

    On the CPU, OpenCV upsamples the planes already mapped to code values (+0.5: truncation is
    then rounding; interpolation commutes with that affine map), and the result is clipped and
    cast once: 1080p planes cost a fifth of the PyTorch route (RESULTS.md, "Speed v2"). Elsewhere
    (CUDA) the device does the work and only the integer planes come back.
    """
    if chroma.device.type != "cpu":
        return chroma_planes_on_device(chroma, size, bits, full_range)
    scale, mid, lo, hi = _code_range(bits, full_range)
    codes = (chroma.float() * scale + (mid + 0.5)).numpy()
    height, width = size
    out = np.empty((*codes.shape[:2], height, width), np.uint8 if bits <= 8 else np.uint16)
    for i in range(codes.shape[0]):
        for c in range(codes.shape[1]):
            plane = cv2.resize(codes[i, c], (width, height), interpolation=cv2.INTER_LINEAR)
            np.clip(plane, lo, hi + 0.5, out=plane)
            out[i, c] = plane  # the cast truncates: floor(code + 0.5)
    return out


def chroma_planes_on_device(chroma: torch.Tensor, size: tuple[int, int], bits: int, full_range: bool) -> np.ndarray:
    """``chroma_planes`` computed where ``chroma`` lives (PyTorch), only the integers copied back."""
    return quantise_chroma(upsample_chroma(chroma.float(), size), bits, full_range)


def quantise_chroma(chroma: torch.Tensor, bits: int, full_range: bool) -> np.ndarray:
    """CbCr (B,2,h,w) centred on 0, on any device -> integer U, V samples (B,2,h,w) with the
    stream's range, in host memory (converted on the device: a GPU sends back bytes, not floats)."""
    scale, mid, lo, hi = _code_range(bits, full_range)
    q = (chroma.float() * scale + mid).round_().clamp_(lo, hi)
    if bits <= 8:  # clamped to [0, 255]: one conversion, straight to the encoder's type
        return q.to(torch.uint8).cpu().numpy()
    return q.to(torch.int32).cpu().numpy().astype(np.uint16)


@dataclass(frozen=True)
class HeldRun:
    """Consecutive held frames as the encoder needs them: their Y planes and timestamps."""

    first_index: int
    y: np.ndarray
    pts: tuple[int, ...]
    time_base: Fraction

    def __len__(self) -> int:
        return len(self.pts)


@dataclass(frozen=True)
class Composer:
    """Frames and their chroma -> encoder batches for one output format."""

    chroma_size: tuple[int, int]  # (h, w) of the output's chroma planes
    bits: int
    full_range: bool

    def compose(self, frames: HeldRun | FrameBatch, chroma: torch.Tensor) -> ComposedBatch:
        """``frames``' own Y planes and ``chroma`` (len(frames),2,h,w) as one encoder batch."""
        if chroma.shape[0] != len(frames):
            raise ValueError(f"{chroma.shape[0]} chroma planes for {len(frames)} frames")
        uv = chroma_planes(chroma, self.chroma_size, self.bits, self.full_range)
        return ComposedBatch(y=frames.y, uv=uv, pts=list(frames.pts), time_base=frames.time_base)


class HeldFrames:
    """Frames waiting for their chroma, joined back to it by frame index (the temporal stage hands
    back the oldest frames first, in runs that need not match the batches read). Only what the
    encoder needs is held (Y planes, timestamps): at most the stage's look-ahead plus a batch,
    whatever the film's length."""

    def __init__(self) -> None:
        self._parts: list[HeldRun] = []

    def put(self, frames: FrameBatch) -> None:
        self._parts.append(HeldRun(frames.first_index, frames.y, frames.pts, frames.time_base))

    def take(self, first_index: int, count: int) -> HeldRun:
        """Frames ``first_index .. first_index + count - 1``, which must be the oldest held."""
        ys: list[np.ndarray] = []
        pts: list[int] = []
        start, time_base = first_index, None
        while count > 0:
            head = self._parts[0]
            if head.first_index != first_index:
                raise ValueError(
                    f"chroma for frame {first_index} came back, the oldest held frame is {head.first_index}"
                )
            n = min(count, len(head))
            ys.append(head.y[:n])
            pts.extend(head.pts[:n])
            time_base = head.time_base
            if n == len(head):
                self._parts.pop(0)
            else:
                self._parts[0] = HeldRun(head.first_index + n, head.y[n:], head.pts[n:], head.time_base)
            first_index += n
            count -= n
        y = ys[0] if len(ys) == 1 else np.concatenate(ys)
        assert time_base is not None
        return HeldRun(start, y, tuple(pts), time_base)
