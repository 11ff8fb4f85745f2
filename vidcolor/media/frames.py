"""Frame assembly for the encoder: the ORIGINAL Y samples (only re-depthed or edge-padded where
the output format forces it) and the predicted CbCr quantised into U, V."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch

from vidcolor.compose import upsample_chroma


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


def fit_luma(y: np.ndarray, in_bits: int, out_bits: int, height: int, width: int) -> np.ndarray:
    """Original Y samples (B,H,W) -> the output's depth and coded size.

    Same depth: the samples are copied untouched. Edge rows/columns are replicated where the
    coded size is larger (odd sizes for 4:2:0 encoders).
    """
    if out_bits > in_bits:
        y = y.astype(np.uint16) << (out_bits - in_bits)
    elif out_bits < in_bits:
        shift = in_bits - out_bits
        y = np.minimum((y.astype(np.uint32) + (1 << (shift - 1))) >> shift, (1 << out_bits) - 1)
        y = y.astype(np.uint8 if out_bits <= 8 else np.uint16)
    ph, pw = height - y.shape[1], width - y.shape[2]
    if ph or pw:
        y = np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="edge")
    return y


def pad_luma_tensor(luma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    ph, pw = height - luma.shape[-2], width - luma.shape[-1]
    if ph or pw:
        luma = torch.nn.functional.pad(luma, (0, pw, 0, ph), mode="replicate")
    return luma


@dataclass
class ComposedBatch:
    y: np.ndarray  # (B,H,W)
    uv: np.ndarray  # (B,2,h,w)
    pts: list[int]
    time_base: Fraction
