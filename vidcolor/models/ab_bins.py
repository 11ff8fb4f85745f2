"""Quantised ab space for the classification model (Zhang et al. 2016; Colorify's low-res model).

The bins are the cells of a regular grid over ab that real sRGB colours reach: computed from a
dense sample of the sRGB cube, so they depend on nothing but the colour space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab

GRID = 10.0
AB_LIMIT = 110.0
_OFFSET = 1 << 16


def in_gamut_bin_centers(grid: float = GRID, steps: int = 64) -> torch.Tensor:
    """(Q, 2) centres of the grid cells hit by sRGB colours, sorted by (a, b)."""
    axis = torch.linspace(0.0, 1.0, steps)
    r, g, b = torch.meshgrid(axis, axis, axis, indexing="ij")
    rgb = torch.stack([r, g, b]).reshape(1, 3, steps, steps * steps)
    ab = rgb_to_lab(rgb)[0, 1:].reshape(2, -1).T
    cells = torch.round(ab / grid).to(torch.int64)
    # unique rows, sorted by (a, b), through one int per cell: torch.unique(dim=0) sorts rows and
    # took 0.4 s of every start-up. Cells lie within ±(AB_LIMIT/grid + 1), far inside ±OFFSET.
    code = (cells[:, 0] + _OFFSET) * (2 * _OFFSET) + (cells[:, 1] + _OFFSET)
    unique = torch.unique(code)
    rows = torch.stack([unique // (2 * _OFFSET) - _OFFSET, unique % (2 * _OFFSET) - _OFFSET], dim=1)
    return rows.to(torch.float32) * grid


def soft_encode_sparse(
    ab: torch.Tensor, centers: torch.Tensor, neighbours: int = 5, sigma: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,2,H,W) ab -> (bins (B,K,H,W) int64, weights (B,K,H,W)): the nearest ``neighbours`` bins,
    nearest first, with normalised Gaussian weights. The sparse form of ``soft_encode``."""
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    near_d, near_i = torch.cdist(flat, centers).topk(neighbours, dim=1, largest=False)
    weight = torch.exp(-(near_d**2) / (2 * sigma**2))
    weight = weight / weight.sum(dim=1, keepdim=True)
    shape = (b, h, w, neighbours)
    return near_i.reshape(shape).permute(0, 3, 1, 2), weight.reshape(shape).permute(0, 3, 1, 2)


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, neighbours: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """(B,2,H,W) ab -> (B,Q,H,W) soft one-hot over the nearest ``neighbours`` bins (Gaussian)."""
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(flat, centers)
    near_d, near_i = dist.topk(neighbours, dim=1, largest=False)
    weight = torch.exp(-(near_d**2) / (2 * sigma**2))
    weight = weight / weight.sum(dim=1, keepdim=True)
    target = torch.zeros(flat.shape[0], centers.shape[0], dtype=ab.dtype, device=ab.device)
    target.scatter_(1, near_i, weight)
    return target.reshape(b, h, w, -1).permute(0, 3, 1, 2)


def _shifted_exp(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits − their max over the bins, exp of that): a softmax's numerator, overflow-free."""
    shifted = logits - logits.amax(dim=1, keepdim=True)
    return shifted, shifted.exp()


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B,Q,H,W) logits -> (B,2,H,W) ab. T=1 is the mean (safe, greyish); T->0 the mode (vivid).

    softmax(logits/T)·centers, written as Σ e·c / Σ e with one 1×1 convolution over the bins
    (outputs a, b and the normaliser): the same numbers as ``torch.softmax`` then ``einsum``,
    but in NCHW throughout, so ONNX Runtime does not transpose a (B,Q,H,W) tensor to soft-max
    over channels (that transpose was 40% of the network's time: RESULTS.md, "Speed v2")."""
    _, e = _shifted_exp(logits / max(temperature, 1e-3))
    weight = torch.cat([centers.to(e.dtype), torch.ones_like(centers[:, :1], dtype=e.dtype)], dim=1)
    sums = F.conv2d(e, weight.t()[:, :, None, None])
    return sums[:, :2] / sums[:, 2:]


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """(B,Q,H,W) logits -> (B,1,H,W) in [0,1]: one minus the normalised entropy of the predicted
    distribution (softmax at T = 1). 1: one bin is certain; 0: every bin equally likely.

    With s = logits − max and Z = Σ exp(s): entropy = log Z − Σ exp(s)·s / Z (no log-softmax over
    channels, for the reason given in ``annealed_mean``)."""
    shifted, e = _shifted_exp(logits)
    total = e.sum(dim=1, keepdim=True)
    entropy = total.log() - (e * shifted).sum(dim=1, keepdim=True) / total
    return (1.0 - entropy / math.log(logits.shape[1])).clamp(0.0, 1.0)


def chroma_scale(confidence_map: torch.Tensor, gamma: float, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """How much of the decoded chroma to keep where the model is this confident: the confidence
    mapped linearly from [low, high] onto [0, 1] (clamped), to the power gamma.

    low = 0, high = 1 is the plain confidence**gamma, which also pales the colours the model is
    sure of (their confidence is far below 1 with 261 bins). A window such as [0.35, 0.55] turns
    the colour off only where the prediction is nearly flat (the blotches: a wall or a road painted
    an average tint) and keeps it whole where the model is sure (RESULTS.md, "a confidence gate")."""
    return ((confidence_map - low) / (high - low)).clamp(0.0, 1.0) ** gamma


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class weights from the empirical bin prior: w ∝ 1/((1-λ)p + λ/Q), with E_p[w] = 1."""
    q = prior.numel()
    w = 1.0 / ((1.0 - lam) * prior + lam / q)
    return w / (prior * w).sum()
