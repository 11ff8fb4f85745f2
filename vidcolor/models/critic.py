"""The critic of GAN fine-tuning (DeOldify's NoGAN): is this (L, ab) a real colour photo?

A patch critic (PatchGAN-like): strided 4x4 convolutions with spectral normalisation, which
bounds the critic's Lipschitz constant and keeps the short adversarial phase stable, and leaky
ReLUs; it outputs one logit per receptive-field patch (stride 2**n_down), so it judges local
colour plausibility rather than the whole composition.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from vidcolor.models.generator import AB_SCALE


def _sn_conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2 if stride == 1 else 1))


class Critic(nn.Module):
    """(L* (B,1,H,W) in [0,100], ab (B,2,H,W)) -> patch logits (B,1,H/2**n_down,W/2**n_down)."""

    def __init__(self, channels: int = 64, n_down: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c = 3, channels
        for _ in range(n_down):
            layers += [_sn_conv(c_in, c, 4, 2), nn.LeakyReLU(0.2, inplace=True)]
            c_in, c = c, c * 2
        layers += [_sn_conv(c_in, c_in, 3, 1), nn.LeakyReLU(0.2, inplace=True), _sn_conv(c_in, 1, 3, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        x = torch.cat([lightness / 50.0 - 1.0, ab / AB_SCALE], dim=1)
        return self.net(x)
