"""Pure colour math on tensors.

Conventions (shapes are ``(B, C, H, W)`` float tensors):
- ``luma``: gamma-encoded luma Y' in [0, 1] (what a B&W film or a video's Y plane holds, full range).
- ``L``: CIE L* in [0, 100]; ``ab``: CIE a*, b* (roughly [-110, 110]).
- The model sees L* of the neutral grey whose sRGB value is Y' (exactly what a grey pixel is),
  and predicts ab. Composition keeps the ORIGINAL luma: only the chroma of the prediction is used.
"""

from __future__ import annotations

import kornia.color as kc
import torch

# BT.601 luma weights: the conversion a B&W photograph of a colour scene approximates, and the
# matrix of SD video. BT.709 is used for HD video when the stream says so.
LUMA_WEIGHTS = {
    "bt601": (0.299, 0.587, 0.114),
    "bt709": (0.2126, 0.7152, 0.0722),
}


def rgb_to_luma(rgb: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> (B,1,H,W) luma Y' in [0,1]."""
    kr, kg, kb = LUMA_WEIGHTS[matrix]
    return (kr * rgb[:, 0:1] + kg * rgb[:, 1:2] + kb * rgb[:, 2:3]).clamp(0.0, 1.0)


def luma_to_lightness(luma: torch.Tensor) -> torch.Tensor:
    """Y' in [0,1] -> CIE L* in [0,100] of the neutral grey with that sRGB value."""
    y = luma.clamp(0.0, 1.0)
    linear = torch.where(y > 0.04045, ((y + 0.055) / 1.055) ** 2.4, y / 12.92)
    f = torch.where(linear > 0.008856, linear.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * linear + 16.0 / 116.0)
    return 116.0 * f - 16.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) sRGB in [0,1] -> (B,3,H,W) Lab (kornia, D65)."""
    return kc.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) Lab -> sRGB in [0,1], out-of-gamut values clipped."""
    return kc.lab_to_rgb(lab, clip=True)


def ycbcr_matrix(matrix: str) -> tuple[float, float, float]:
    return LUMA_WEIGHTS[matrix]


def rgb_to_chroma(rgb: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> (B,2,H,W) Cb, Cr centred on 0 (full range, about [-0.5, 0.5])."""
    kr, kg, kb = LUMA_WEIGHTS[matrix]
    y = kr * rgb[:, 0:1] + kg * rgb[:, 1:2] + kb * rgb[:, 2:3]
    cb = (rgb[:, 2:3] - y) / (2.0 * (1.0 - kb))
    cr = (rgb[:, 0:1] - y) / (2.0 * (1.0 - kr))
    return torch.cat([cb, cr], dim=1)


def ycbcr_to_rgb(luma: torch.Tensor, chroma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Y' (B,1,H,W) in [0,1] and CbCr (B,2,H,W) centred on 0 -> RGB in [0,1]."""
    kr, kg, kb = LUMA_WEIGHTS[matrix]
    cb, cr = chroma[:, 0:1], chroma[:, 1:2]
    r = luma + 2.0 * (1.0 - kr) * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return torch.cat([r, g, b], dim=1).clamp(0.0, 1.0)


def ab_to_chroma(luma: torch.Tensor, ab: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Predicted ab with the lightness of ``luma`` -> CbCr (B,2,H,W) of that colour.

    ``luma`` and ``ab`` must share H, W. The colour is built in Lab (L* from the original luma),
    converted to RGB, and only its chroma is returned: the caller keeps the original luma plane.
    """
    lab = torch.cat([luma_to_lightness(luma), ab], dim=1)
    return rgb_to_chroma(lab_to_rgb(lab), matrix)


def compose_rgb(luma: torch.Tensor, ab: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Original luma + predicted ab -> RGB whose luma is exactly the original (up to gamut clipping)."""
    return ycbcr_to_rgb(luma, ab_to_chroma(luma, ab, matrix), matrix)
