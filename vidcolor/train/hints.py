"""Simulated user colour hints for training (Zhang et al. 2017, "Real-Time User-Guided Image
Colorization with Learned Deep Priors").

A person gives a few points of colour; training imitates that with small patches at random places
that reveal their true mean ab. Many images get none, so the same network stays a good automatic
colorizer. The planes follow the generator's hint layout: a/AB_SCALE, b/AB_SCALE, mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vidcolor.color import rgb_to_lab
from vidcolor.models.generator import AB_SCALE, HINT_CHANNELS


@dataclass(frozen=True)
class HintSimulation:
    p_none: float = 0.5  # share of images that get no hint at all (the automatic use)
    geometric_p: float = 0.125  # points per hinted image ~ Geometric(p): mean 1/p
    max_points: int = 64
    max_patch: int = 7  # patch side, uniform in 1..max_patch pixels at training size

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_none <= 1.0:
            raise ValueError(f"p_none {self.p_none} must be in [0, 1]")
        if not 0.0 < self.geometric_p <= 1.0:
            raise ValueError(f"geometric_p {self.geometric_p} must be in (0, 1]")
        if self.max_points < 1 or self.max_patch < 1:
            raise ValueError("max_points and max_patch must be >= 1")


def _uniform(gen: torch.Generator) -> float:
    return float(torch.rand(1, generator=gen))


def simulate_hints(rgb: torch.Tensor, sim: HintSimulation, gen: torch.Generator) -> torch.Tensor:
    """RGB (B,3,H,W) in [0,1] -> hint planes (B,3,H,W): each hinted patch holds its true mean ab."""
    b, _, h, w = rgb.shape
    ab = rgb_to_lab(rgb)[:, 1:] / AB_SCALE
    hints = torch.zeros(b, HINT_CHANNELS, h, w, dtype=rgb.dtype)
    log_q = torch.log1p(torch.tensor(-sim.geometric_p)) if sim.geometric_p < 1.0 else None
    for i in range(b):
        if _uniform(gen) < sim.p_none:
            continue
        # Inverse-CDF draw of a geometric count >= 1.
        count = 1 if log_q is None else 1 + int(torch.log(torch.rand(1, generator=gen).clamp_min(1e-12)) / log_q)
        for _ in range(min(count, sim.max_points)):
            side = min(1 + int(_uniform(gen) * sim.max_patch), h, w)
            top = int(_uniform(gen) * (h - side + 1))
            left = int(_uniform(gen) * (w - side + 1))
            patch = ab[i, :, top : top + side, left : left + side]
            hints[i, :2, top : top + side, left : left + side] = patch.mean(dim=(1, 2), keepdim=True)
            hints[i, 2, top : top + side, left : left + side] = 1.0
    return hints


def fixed_point_hints(rgb: torch.Tensor, points: int, patch: int, seed: int) -> torch.Tensor:
    """The evaluation rule: ``points`` uniformly random ``patch``×``patch`` squares per image
    (seeded), each revealing its true mean ab. Used by ``vidcolor eval --hint-points``."""
    gen = torch.Generator().manual_seed(seed)
    b, _, h, w = rgb.shape
    ab = rgb_to_lab(rgb)[:, 1:] / AB_SCALE
    hints = torch.zeros(b, HINT_CHANNELS, h, w, dtype=rgb.dtype)
    side = min(patch, h, w)
    for i in range(b):
        for _ in range(points):
            top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
            hints[i, :2, top : top + side, left : left + side] = ab[i, :, top : top + side, left : left + side].mean(
                dim=(1, 2), keepdim=True
            )
            hints[i, 2, top : top + side, left : left + side] = 1.0
    return hints
