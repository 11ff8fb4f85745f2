"""The compose step: the model's chroma at render size + the picture's own luma -> the output.

Pure colour math on tensors, shared by the still-image job, evaluation and the benchmarks:
- ``upsample_chroma``: render-size CbCr to the full picture (bilinear, align_corners=False).
- ``upsample_chroma_rows``: the same for a band of output rows only, equal to slicing the full
  upsample; it lets a huge picture be composed one band at a time at bounded memory.
- ``fit_chroma_to_gamut``: scale CbCr towards grey just enough that Y' + CbCr is a valid RGB.
- ``compose_rows`` / ``compose_image``: luma + chroma -> quantised RGB, band by band.

The output's luma is always the input's: only the chroma comes from the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import LUMA_WEIGHTS, ycbcr_to_rgb

# Pixels composed at once. Each band holds about a dozen float32 planes of this many pixels, so
# a band costs ~100 MB whatever the picture's size (a 12000×12000 scan is 144 bands of 1 Mpx).
BAND_PIXELS = 1 << 20


def upsample_chroma(chroma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """CbCr (B,2,h,w) at render size -> (B,2,H,W) at ``size`` (bilinear)."""
    if tuple(chroma.shape[-2:]) == tuple(size):
        return chroma
    return F.interpolate(chroma, size=size, mode="bilinear", align_corners=False)


def widen_chroma(chroma: torch.Tensor, width: int) -> torch.Tensor:
    """The horizontal half of the bilinear upsample: (B,C,h,w) -> (B,C,h,width).

    Bilinear interpolation is separable, so this followed by ``upsample_chroma_rows`` equals the
    full upsample (to float rounding) while holding only h rows at full width.
    """
    if chroma.shape[-1] == width:
        return chroma
    return F.interpolate(chroma, size=(chroma.shape[-2], width), mode="bilinear", align_corners=False)


def upsample_chroma_rows(wide: torch.Tensor, height: int, top: int, bottom: int) -> torch.Tensor:
    """Rows ``top:bottom`` of the bilinear upsample of ``wide`` (B,C,h,W) to ``height`` rows.

    Uses PyTorch's own mapping for align_corners=False: source row = (y + 0.5)·h/H − 0.5,
    clamped at 0, blended between its two neighbours.
    """
    h = wide.shape[-2]
    if h == height:
        return wide[..., top:bottom, :]
    y = torch.arange(top, bottom, dtype=torch.float64, device=wide.device)
    src = ((y + 0.5) * (h / height) - 0.5).clamp_min(0.0)
    i0 = src.floor().long().clamp_max(h - 1)
    i1 = (i0 + 1).clamp_max(h - 1)
    frac = (src - i0.double()).to(wide.dtype).view(1, 1, -1, 1)
    return wide[..., i0, :] * (1.0 - frac) + wide[..., i1, :] * frac


def fit_chroma_to_gamut(luma: torch.Tensor, chroma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Scale each pixel's CbCr towards grey just enough that Y' + chroma is a valid RGB colour.

    Clipping RGB instead would change the luma of saturated dark and bright pixels; scaling the
    chroma keeps the luma exact and only gives up the colour that could not be shown.
    luma (B,1,H,W) in [0,1], chroma (B,2,H,W) -> chroma of the same shape.
    """
    kr, kg, kb = LUMA_WEIGHTS[matrix]
    cb, cr = chroma[:, 0:1], chroma[:, 1:2]
    dr = 2.0 * (1.0 - kr) * cr
    db = 2.0 * (1.0 - kb) * cb
    dg = -(kr * dr + kb * db) / kg
    y = luma.clamp(0.0, 1.0)
    scale = torch.ones_like(y)
    for d in (dr, dg, db):
        # Largest s with 0 <= y + s·d <= 1 (d = 0 puts no bound).
        room = torch.where(d > 0, 1.0 - y, y)
        bound = torch.where(d != 0, room / d.abs().clamp_min(1e-12), torch.ones_like(y))
        scale = torch.minimum(scale, bound)
    return chroma * scale.clamp(0.0, 1.0)


def band_rows(width: int) -> int:
    """How many rows of a picture ``width`` pixels wide make one band."""
    return max(1, BAND_PIXELS // max(1, width))


def compose_rows(luma: torch.Tensor, chroma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Luma (B,1,H,W) + full-size CbCr (B,2,H,W) -> RGB (B,3,H,W) in [0,1], chroma gamut-fitted."""
    return ycbcr_to_rgb(luma, fit_chroma_to_gamut(luma, chroma.float(), matrix), matrix).clamp_(0.0, 1.0)


def compose_bands(
    luma: torch.Tensor, chroma_small: torch.Tensor, matrix: str = "bt601"
) -> Iterator[tuple[int, torch.Tensor]]:
    """Full-size luma (1,1,H,W) + render-size CbCr (1,2,h,w) -> (top row, RGB band (1,3,rows,W)).

    Bands follow each other top to bottom; together they are the composed picture.
    """
    height, width = luma.shape[-2:]
    wide = widen_chroma(chroma_small.float().to(luma.device), width)
    rows = band_rows(width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        yield (
            top,
            compose_rows(luma[..., top:bottom, :].float(), upsample_chroma_rows(wide, height, top, bottom), matrix),
        )


def quantise_rgb(rgb: torch.Tensor, bit_depth: int) -> np.ndarray:
    """RGB (1,3,H,W) in [0,1] -> (H,W,3) uint8 (8 bits) or uint16 (16 bits), rounded."""
    top = float((1 << bit_depth) - 1)
    q = (rgb[0] * top).round_().clamp_(0, top).permute(1, 2, 0).cpu().numpy()
    return q.astype(np.uint16 if bit_depth == 16 else np.uint8)


def compose_image(luma: torch.Tensor, chroma_small: torch.Tensor, bit_depth: int, matrix: str = "bt601") -> np.ndarray:
    """Full-size luma (1,1,H,W) + render-size CbCr (1,2,h,w) -> RGB (H,W,3) uint8/uint16.

    Composed band by band into one output array, so the memory beyond the input and the output
    is one band's, whatever the picture's size. The output's luma is the input's (only rounding
    to the output's depth changes it).
    """
    height, width = luma.shape[-2:]
    out = np.empty((height, width, 3), dtype=np.uint16 if bit_depth == 16 else np.uint8)
    for top, rgb in compose_bands(luma, chroma_small, matrix):
        out[top : top + rgb.shape[-2]] = quantise_rgb(rgb, bit_depth)
    return out
