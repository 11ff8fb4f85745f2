"""Image and video quality metrics on tensors.

Image metrics compare a colorized picture with the colour original: PSNR on RGB, CIEDE2000
colour difference in CIE Lab (Sharma, Wu & Dalal 2005) and the colourfulness of Hasler &
Süsstrunk (2003), which tells a vivid result from a sepia-safe one.
"""

from __future__ import annotations

import torch

from vidcolor.color import rgb_to_lab

def psnr(pred: torch.Tensor, truth: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB of (B,C,H,W) images with values in [0, peak]; capped at 100 dB."""
    mse = ((pred.double() - truth.double()) ** 2).flatten(1).mean(1)
    return (10.0 * torch.log10(peak**2 / mse.clamp_min(peak**2 * 1e-10))).float()

def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between Lab tensors, L, a, b along ``dim``.

    (B,3,H,W) pairs give (B,H,W); (N,3) pairs give (N,). Follows Sharma, Wu & Dalal (2005),
    including their conventions for the hue of achromatic colours and the mean hue across 0°.
    """
    L1, a1, b1 = lab1.unbind(dim)
    L2, a2, b2 = lab2.unbind(dim)
    c_mean = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = c_mean**7
    g = 0.5 * (1.0 - torch.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    # atan2(0, 0) is 0 in torch, which is the paper's convention for achromatic colours.
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360.0
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360.0
    chroma_product = c1p * c2p
    achromatic = chroma_product == 0

    dl = L2 - L1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    dH = 2.0 * torch.sqrt(chroma_product) * torch.sin(torch.deg2rad(dh) / 2.0)

    l_mean = 0.5 * (L1 + L2)
    cp_mean = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    far = (h1p - h2p).abs() > 180.0
    h_mean = torch.where(far, torch.where(h_sum < 360.0, h_sum + 360.0, h_sum - 360.0), h_sum) / 2.0
    h_mean = torch.where(achromatic, h_sum, h_mean)

    rad = torch.deg2rad
    t = (
        1.0
        - 0.17 * torch.cos(rad(h_mean - 30.0))
        + 0.24 * torch.cos(rad(2.0 * h_mean))
        + 0.32 * torch.cos(rad(3.0 * h_mean + 6.0))
        - 0.20 * torch.cos(rad(4.0 * h_mean - 63.0))
    )
    d_theta = 30.0 * torch.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    cp7 = cp_mean**7
    r_c = 2.0 * torch.sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (l_mean - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / torch.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_mean
    s_h = 1.0 + 0.015 * cp_mean * t
    r_t = -torch.sin(rad(2.0 * d_theta)) * r_c
    tl, tc, th = dl / s_l, dc / s_c, dH / s_h
    return torch.sqrt((tl**2 + tc**2 + th**2 + r_t * tc * th).clamp_min(0.0))

def mean_ciede2000(pred_rgb: torch.Tensor, truth_rgb: torch.Tensor) -> torch.Tensor:
    """Per-image mean CIEDE2000 between (B,3,H,W) sRGB images in [0,1] (D65 Lab)."""
    lab_p = rgb_to_lab(pred_rgb.float()).double()
    lab_t = rgb_to_lab(truth_rgb.float()).double()
    return ciede2000(lab_p, lab_t).flatten(1).mean(1).float()

def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness M of (B,3,H,W) RGB in [0,1], on their 0–255 scale.

    rg = R − G, yb = (R + G)/2 − B; M = σ_rgyb + 0.3·μ_rgyb with σ_rgyb = √(σ_rg² + σ_yb²) and
    μ_rgyb = √(μ_rg² + μ_yb²). About 0 for grey, ~33 "moderately", ~59 "quite", >82 "extremely" colourful.
    """
    x = rgb.double() * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mu = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return (sigma + 0.3 * mu).float()
