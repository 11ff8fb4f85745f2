"""Frame assembly for the encoder: the ORIGINAL Y samples (only re-depthed or edge-padded where
the output format forces it) and the predicted CbCr quantised into U, V."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch


def quantise_chroma(chroma: torch.Tensor, bits: int, full_range: bool) -> np.ndarray:
    """CbCr (B,2,h,w) centred on 0 -> integer U, V samples (B,2,h,w) with the stream's range."""
    mid = float(1 << (bits - 1))
    if full_range:
        scale, lo, hi = float((1 << bits) - 1), 0.0, float((1 << bits) - 1)
    else:
        s = float(1 << (bits - 8))
        scale, lo, hi = 224.0 * s, 16.0 * s, 240.0 * s
    q = (chroma.float() * scale + mid).round_().clamp_(lo, hi)
    return q.to(torch.int32).numpy().astype(np.uint8 if bits <= 8 else np.uint16)


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
