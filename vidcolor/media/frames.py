"""What the encoder is handed: the ORIGINAL Y samples (only re-depthed or edge-padded where the
output format forces it: ``fit_luma``) and the U, V planes (vidcolor.video.compose makes them)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


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


@dataclass
class ComposedBatch:
    y: np.ndarray  # (B,H,W)
    uv: np.ndarray  # (B,2,h,w)
    pts: list[int]
    time_base: Fraction
