"""Edge-aware spreading on a bilateral grid (Chen, Paris & Durand 2007): pure tensor functions.

Weighted values are splatted into cells of ``cell`` pixels × ``bins`` bins of a guide image (the
luma), blurred in the grid, and read back at each pixel's position and guide value. A value thus
reaches pixels that are near it AND of similar brightness, in O(pixels). The temporal stage reads
its grids back with ``slice_grid``; ``spread`` was how colour hints reached their surroundings until
2026-12-07 (it reaches anything of similar brightness nearby, across outlines: vidcolor.geodesic
replaced it), kept for benchmarks/bench_hint_spread.py's comparison."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spread(
    values: torch.Tensor, weight: torch.Tensor, guide: torch.Tensor, cell: int, bins: int = 8, passes: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-aware weighted sums at every pixel: (numerator (B,C,h,w), denominator (B,1,h,w)).

    ``values`` (B,C,h,w), ``weight`` (B,1,h,w) >= 0, ``guide`` (B,1,h,w) in [0,1]. Each pass blurs
    the grid with a 3×3×3 box: more passes reach further (about ``cell`` pixels and one bin a pass).
    ``numerator / denominator`` is the spread value where the denominator is not ~0.
    """
    if cell < 1 or bins < 1 or passes < 0:
        raise ValueError("cell and bins must be >= 1 and passes >= 0")
    n, c, h, w = values.shape
    index = (guide * bins).long().clamp(0, bins - 1)
    onehot = (index == torch.arange(bins, device=guide.device).view(1, bins, 1, 1)).to(values.dtype)  # (B,bins,h,w)
    wb = weight * onehot  # (B,bins,h,w)
    num = F.avg_pool2d((values.unsqueeze(2) * wb.unsqueeze(1)).reshape(n, c * bins, h, w), cell, ceil_mode=True)
    den = F.avg_pool2d(wb, cell, ceil_mode=True)
    hc, wc = num.shape[-2:]
    volume = torch.cat([num.reshape(n, c, bins, hc, wc), den.reshape(n, 1, bins, hc, wc)], 1)  # (B,C+1,bins,hc,wc)
    for _ in range(passes):
        volume = F.avg_pool3d(volume, 3, stride=1, padding=1, count_include_pad=False)
    picked = slice_grid(volume, guide)
    return picked[:, :c], picked[:, c:]


def slice_grid(volume: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Read a bilateral grid (B,C,bins,hc,wc) back at every pixel: one trilinear lookup at the
    pixel's (x, y, guide) position (``guide`` (B,1,h,w) in [0,1]; bin k is centred at (k+0.5)/bins)
    -> (B,C,h,w). One grid_sample on the 5-D volume, not an upsampling of every bin."""
    n, (h, w) = guide.shape[0], guide.shape[-2:]
    ys = (torch.arange(h, device=guide.device, dtype=volume.dtype) + 0.5) / h * 2.0 - 1.0
    xs = (torch.arange(w, device=guide.device, dtype=volume.dtype) + 0.5) / w * 2.0 - 1.0
    zs = guide[:, 0].to(volume.dtype).clamp(0.0, 1.0) * 2.0 - 1.0
    grid = torch.stack([xs.view(1, 1, w).expand(n, h, w), ys.view(1, h, 1).expand(n, h, w), zs], dim=-1)
    return F.grid_sample(volume, grid.unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False)[
        :, :, 0
    ]
