"""An anchor's colour found by what things are: feature matching to the anchor frame (exemplar
colour transfer). Pure tensor functions.

The temporal stage carries a reference's colour along the optical flow, but only as far as the
motion is tracked; a palette (vidcolor.palette) maps the model's colour to the reference's, which
fails where the model coloured two different things alike (a yellow façade and a grey road both
near-neutral). Here every position of the anchor frame is a key: the colour network's own encoder
features there (what the network sees: texture and shape at strides 8 and 16, trained to tell what
colour a thing is), L2-normalised, with the anchor's chroma as the value. Another frame of the
shot reads, at each position, the softmax-weighted colour of its ``top_k`` most similar keys
(cosine similarity / ``temperature``), as exemplar-based colorizers do with their attention over
a reference (Zhang et al. 2019 "Deep Exemplar-based Video Colorization"; ColorMNet's memory): a
person who turned, or a wall the camera came back to after the flow lost it, can find its own
colour again.

The confidence of a position is its best key's similarity mapped linearly from ``min_similarity``
(0) to ``full_similarity`` (1), so a thing that looks like nothing in the reference keeps the
model's colour (with both None every position trusts its best matches). The anchor frame may be
described at other zooms too (``fit_exemplar`` takes several views), so a thing shown small in it
is recognised in a close-up.

Shapes: features (1,C,h',w') L2-normalised over C (stride 8 of the render size); chroma (1,2,h,w)
CbCr at render size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.errors import InputError


@dataclass(frozen=True)
class MatchConfig:
    # Defaults chosen on the video-tune cut films (benchmarks/bench_shots.py --tune-references;
    # benchmarks/RESULTS.md, "References found again by feature matching" and "Matching at other
    # zooms, with a similarity gate"), never on held-out material.
    temperature: float = 0.05
    top_k: int = 8
    # Confidence gate on the best key's cosine similarity (both, or neither: no gate).
    min_similarity: float | None = 0.3
    full_similarity: float | None = 0.6

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise InputError(f"match temperature must be positive, not {self.temperature!r}")
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise InputError(f"match top_k must be a whole number >= 1, not {self.top_k!r}")
        gate = (self.min_similarity, self.full_similarity)
        if (gate[0] is None) != (gate[1] is None):
            raise InputError("give both match similarities (min_similarity, full_similarity) or neither")
        if gate[0] is not None and not -1.0 <= gate[0] < gate[1] <= 1.0:  # type: ignore[operator]
            raise InputError("match similarities need -1 <= min_similarity < full_similarity <= 1")


@dataclass(frozen=True)
class Exemplar:
    """One anchor frame as keys and values: (C,N) unit feature vectors and their (2,N) CbCr."""

    keys: torch.Tensor
    values: torch.Tensor
    config: MatchConfig


def fit_exemplar(
    features: torch.Tensor | Sequence[torch.Tensor], chroma: torch.Tensor, config: MatchConfig = MatchConfig()
) -> Exemplar:
    """The exemplar of one anchor frame: its features and its (render-size) chroma, area-averaged
    onto the features' grid. Several feature maps of the same frame (views of it at other zooms)
    all become keys, each with the chroma pooled onto its own grid."""
    views = [features] if isinstance(features, torch.Tensor) else list(features)
    if chroma.dim() != 4 or chroma.shape[:2] != (1, 2) or not views:
        raise ValueError("fit_exemplar takes one frame: features (1,C,h,w) and chroma (1,2,H,W)")
    chroma = chroma.float()
    keys, pooled = [], []
    for view in views:
        if view.dim() != 4 or view.shape[0] != 1 or view.shape[1] != views[0].shape[1]:
            raise ValueError("fit_exemplar takes one frame: features (1,C,h,w) and chroma (1,2,H,W)")
        keys.append(view[0].float().flatten(1))
        pooled.append(F.adaptive_avg_pool2d(chroma, view.shape[-2:])[0].flatten(1))
    return Exemplar(torch.cat(keys, 1), torch.cat(pooled, 1), config)


def match_colour(
    exemplar: Exemplar, features: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The anchor's colour at each position of another frame, found by feature similarity, and its
    confidence: ((1,2,*size) CbCr, (1,1,*size) in [0,1]), upsampled from the features' grid."""
    if features.dim() != 4 or features.shape[0] != 1 or features.shape[1] != exemplar.keys.shape[0]:
        raise ValueError(f"features must be (1,{exemplar.keys.shape[0]},h,w), got {tuple(features.shape)}")
    config = exemplar.config
    h, w = features.shape[-2:]
    similarity = features[0].float().flatten(1).T @ exemplar.keys  # (h·w, N)
    top, index = similarity.topk(min(config.top_k, similarity.shape[1]), dim=1)
    weight = torch.softmax(top / config.temperature, dim=1)  # (h·w, k)
    picked = exemplar.values[:, index]  # (2, h·w, k)
    colour = (picked * weight).sum(-1).reshape(1, 2, h, w)
    if config.min_similarity is None or config.full_similarity is None:
        confidence = top.new_ones(1, 1, h, w)
    else:
        span = config.full_similarity - config.min_similarity
        confidence = ((top[:, 0] - config.min_similarity) / span).clamp(0.0, 1.0).reshape(1, 1, h, w)
    both = F.interpolate(torch.cat([colour, confidence], 1), size=size, mode="bilinear", align_corners=False)
    return both[:, :2], both[:, 2:]
