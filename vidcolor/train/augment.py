"""Augmentation: random 85–100% crops (Colorify), flips, and old-film degradations.

Degradations touch only the luminance the model sees, never the colour target: the model learns
to colour damaged film as if it were clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia.filters as kf
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_luma


@dataclass(frozen=True)
class AugmentConfig:
    size: int = 128  # training crop side
    final_size: int = 0  # crop side of the last train.final_steps steps (0: no final phase)
    low_size: int = 0  # crop side of the first train.low_steps steps (0: no low-resolution stage)
    crop_min: float = 0.85  # crop side as a fraction of the image side
    crop_max: float = 1.0
    flip: bool = True
    p_grain: float = 0.3
    grain_sigma: float = 0.04
    p_blur: float = 0.2
    p_fade: float = 0.3
    p_scratches: float = 0.15


def _rand(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen)


def random_crops(rgb: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """One random square crop of cfg.crop_min–crop_max of the side per image, resized to cfg.size."""
    b, _, h, w = rgb.shape
    frac = cfg.crop_min + (cfg.crop_max - cfg.crop_min) * _rand(gen, b)
    side = (frac * min(h, w)).round().long()
    out = []
    for i in range(b):
        s = int(side[i])
        top = int(_rand(gen, 1) * (h - s + 1))
        left = int(_rand(gen, 1) * (w - s + 1))
        crop = rgb[i : i + 1, :, top : top + s, left : left + s]
        out.append(F.interpolate(crop, size=(cfg.size, cfg.size), mode="bilinear", align_corners=False, antialias=True))
    rgb = torch.cat(out).clamp(0, 1)
    if cfg.flip:
        flip = _rand(gen, b) < 0.5
        rgb[flip] = rgb[flip].flip(-1)
    return rgb


def degrade_luma(luma: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Film grain, softness, faded contrast and vertical scratches on (B,1,H,W) luma."""
    b, _, h, w = luma.shape
    y = luma.clone()
    pick = _rand(gen, b) < cfg.p_blur
    if pick.any():
        y[pick] = kf.gaussian_blur2d(y[pick], (5, 5), (1.2, 1.2))
    pick = _rand(gen, b) < cfg.p_fade
    if pick.any():
        # A faded print: contrast squeezed towards a lifted black and lowered white.
        low = 0.15 * _rand(gen, int(pick.sum()), 1, 1, 1)
        high = 1.0 - 0.2 * _rand(gen, int(pick.sum()), 1, 1, 1)
        y[pick] = low + (high - low) * y[pick]
    pick = _rand(gen, b) < cfg.p_grain
    if pick.any():
        sigma = cfg.grain_sigma * _rand(gen, int(pick.sum()), 1, 1, 1)
        y[pick] = y[pick] + sigma * torch.randn(y[pick].shape, generator=gen)
    pick = _rand(gen, b) < cfg.p_scratches
    for i in torch.nonzero(pick).flatten().tolist():
        for _ in range(int(1 + 3 * _rand(gen, 1))):
            x = int(_rand(gen, 1) * w)
            y[i, :, :, x : x + 1] = 1.0 if _rand(gen, 1) < 0.5 else 0.05
    return y.clamp(0.0, 1.0)


def augment_batch(rgb: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (B,3,H,W) -> (target RGB crop, degraded input luma)."""
    rgb = random_crops(rgb, cfg, gen)
    return rgb, degrade_luma(rgb_to_luma(rgb), cfg, gen)
