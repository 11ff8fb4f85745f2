"""A shot's palette: how a person's colour differs from the model's, learnt on one frame and
applied to the model's colour anywhere else in the shot. Pure tensor functions.

The temporal stage carries a reference's colour along the optical flow, but only as far as the
motion is tracked: after fast motion, an occlusion or a turn, the model's own colour would return.
The palette keeps the person's choice there too. On the anchor frame it records, for each cell of
a small grid over (luma, model Cb, model Cr), the anchor's mean chroma; on another frame each pixel
reads the cell of its own luma and model colour. So whatever the model colours like something in
the reference takes that thing's reference colour, wherever it moves: a dress the model made
grey-blue stays the red the person painted. A pixel whose (luma, model colour) the anchor frame
hardly had keeps the model's colour (confidence grows with the share of the frame in its cell).

Shapes: luma (B,1,h,w) in [0,1]; chroma (B,2,h,w) CbCr, about [-0.5, 0.5].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.errors import InputError


@dataclass(frozen=True)
class PaletteConfig:
    luma_bins: int = 8
    chroma_bins: int = 16
    # Model CbCr is binned over [-chroma_range, chroma_range]; beyond it, the edge cells.
    chroma_range: float = 0.25
    # Share of the anchor frame's pixels (in a cell and its neighbours' mean) that gives a full
    # confidence in that cell's colour; less gives proportionally less.
    full_share: float = 0.002

    def __post_init__(self) -> None:
        if self.luma_bins < 1 or self.chroma_bins < 1:
            raise InputError("palette bins must be at least 1")
        if not self.chroma_range > 0 or not self.full_share > 0:
            raise InputError("palette chroma_range and full_share must be positive")


@dataclass(frozen=True)
class Palette:
    """Blurred cell sums over (luma, model Cb, model Cr): target Cb·share, target Cr·share, share."""

    volume: torch.Tensor  # (1,3,luma_bins,chroma_bins,chroma_bins)
    config: PaletteConfig


def _coordinates(luma: torch.Tensor, model: torch.Tensor, config: PaletteConfig) -> torch.Tensor:
    """(B,h,w,3) cell coordinates in [0,1]: (Cr, Cb, luma), grid_sample's (x, y, z) order."""
    chroma = ((model.float() / config.chroma_range) * 0.5 + 0.5).clamp(0.0, 1.0)
    return torch.stack([chroma[:, 1], chroma[:, 0], luma[:, 0].float().clamp(0.0, 1.0)], dim=-1)


def fit_palette(
    luma: torch.Tensor, model: torch.Tensor, target: torch.Tensor, config: PaletteConfig = PaletteConfig()
) -> Palette:
    """The palette of one anchor frame (B=1): its luma, the model's chroma for it and the
    anchor's chroma (a reference's, or a hinted prediction's)."""
    if luma.shape[0] != 1 or model.shape != target.shape or model.shape[-2:] != luma.shape[-2:]:
        raise ValueError("fit_palette takes one frame: luma (1,1,h,w), model and target (1,2,h,w)")
    sizes = (config.luma_bins, config.chroma_bins, config.chroma_bins)
    coords = _coordinates(luma, model, config).reshape(-1, 3)
    index = [(coords[:, k] * n).long().clamp(0, n - 1) for k, n in zip((2, 1, 0), sizes)]  # luma, Cb, Cr
    flat = (index[0] * sizes[1] + index[1]) * sizes[2] + index[2]
    cells = sizes[0] * sizes[1] * sizes[2]
    share = torch.bincount(flat, minlength=cells).float() / flat.numel()
    values = target.float().reshape(2, -1)
    sums = [torch.bincount(flat, weights=values[c], minlength=cells).float() / flat.numel() for c in range(2)]
    volume = torch.stack([*sums, share]).reshape(1, 3, *sizes)
    # One 3x3x3 box blur: neighbouring brightness and model colours share their evidence.
    volume = F.avg_pool3d(volume, 3, stride=1, padding=1, count_include_pad=False)
    return Palette(volume, config)


def apply_palette(palette: Palette, luma: torch.Tensor, model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The anchor's colour for each pixel of (B) frames, read from the cell of its luma and model
    chroma: (chroma (B,2,h,w), confidence (B,1,h,w) in [0,1]). Where confidence is 0 the chroma
    is the model's own."""
    n = luma.shape[0]
    coords = _coordinates(luma, model, palette.config) * 2.0 - 1.0  # align_corners=False: cell k centred at (k+0.5)/n
    picked = F.grid_sample(
        palette.volume.expand(n, -1, -1, -1, -1),
        coords.unsqueeze(1),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )[:, :, 0]
    num, share = picked[:, :2], picked[:, 2:]
    mapped = torch.where(share > 1e-9, num / share.clamp_min(1e-9), model.float())
    confidence = (share / palette.config.full_share).clamp(0.0, 1.0)
    return mapped, confidence
