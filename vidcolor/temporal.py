"""Temporal stage: what turns per-frame chroma predictions into a film's chroma.

A stage sees each batch of render-size luma frames in order and returns their chroma. It decides
which frames the model must colour: it is handed ``predict`` (render luma -> CbCr) and calls it on
the frames it needs, so keyframe mode can skip the model entirely on most frames.
State is O(1) frames (the previous frame's luma and output chroma), never the film.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TemporalConfig:
    enabled: bool = True
    strength: float = 0.8  # weight of the warped previous chroma where the flow is trusted
    keyframe_interval: int | str = 1  # 1: model on every frame; N; or "auto"


class ChromaStage(Protocol):
    def process(self, luma: torch.Tensor, predict: Predict) -> torch.Tensor:
        """(B,1,h,w) render-size luma of consecutive frames -> (B,2,h,w) CbCr for them."""
        ...

    def reset(self) -> None:
        """Forget the previous frame (a new film, or a seek)."""
        ...


class PerFrameStage:
    """No temporal processing: the model colours every frame on its own (``--no-temporal``)."""

    def process(self, luma: torch.Tensor, predict: Predict) -> torch.Tensor:
        return predict(luma)

    def reset(self) -> None:
        pass


def build_stage(config: TemporalConfig) -> ChromaStage:
    if not config.enabled:
        return PerFrameStage()
    try:
        from vidcolor.temporal_flow import FlowStage  # the flow-guided stage (its own module)
    except ImportError:
        return PerFrameStage()
    return FlowStage(config)
