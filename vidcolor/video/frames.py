"""The frame batch every video stage passes on: a run of consecutive frames and what is known of
them so far (TorchCodec's ``FrameBatch`` is the model: data with its indices and timestamps).

Filled in stage by stage: ``prepare`` gives indices, timestamps, the Y planes the output keeps
and the render-size luma (plus hint planes and reference chroma where a person gave them); the
temporal stage names the frames the model must colour (``keys``); the model runner adds their
chroma (``predicted``). Frames are counted from 0 in decoding order, so a batch knows where in
the film it lies and any part of it can be cut out (``batch[i:j]``) without losing that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import torch


@dataclass(frozen=True)
class FrameBatch:
    first_index: int  # the first frame's index in the film (0-based, decoding order)
    pts: tuple[int, ...]  # presentation timestamps, in time_base units
    time_base: Fraction
    y: np.ndarray  # (B,H,W) the frames' own Y planes at the output's depth and coded size
    luma: torch.Tensor  # (B,1,h,w) luma in [0,1] at the model's render size
    hints: torch.Tensor | None = None  # (B,3,h,w) colour-hint planes (vidcolor.hints), or None
    # A person's colour for some frames: batch position -> (1,2,h,w) CbCr at render size.
    references: dict[int, torch.Tensor] = field(default_factory=dict)
    keys: tuple[int, ...] = ()  # batch positions the model colours (the temporal stage's choice)
    predicted: torch.Tensor | None = None  # (len(keys),2,h,w) the model's CbCr for them

    def __post_init__(self) -> None:
        n = len(self.pts)
        if self.first_index < 0 or n == 0:
            raise ValueError(f"a frame batch needs frames and a first index >= 0 (got {n} at {self.first_index})")
        if self.y.shape[0] != n or self.luma.shape[0] != n or self.luma.dim() != 4 or self.luma.shape[1] != 1:
            raise ValueError(
                f"frame batch parts disagree: {n} timestamps, Y {self.y.shape}, luma {tuple(self.luma.shape)}"
            )
        if self.hints is not None and (self.hints.shape[0] != n or self.hints.shape[-2:] != self.luma.shape[-2:]):
            raise ValueError(f"hint planes {tuple(self.hints.shape)} do not match the luma {tuple(self.luma.shape)}")
        if any(not 0 <= i < n for i in (*self.references, *self.keys)):
            raise ValueError("frame batch references or keys point outside the batch")
        if self.predicted is not None and self.predicted.shape[0] != len(self.keys):
            raise ValueError(f"{self.predicted.shape[0]} predictions for {len(self.keys)} key frames")

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def indices(self) -> range:
        """The frames' indices in the film."""
        return range(self.first_index, self.first_index + len(self))

    @property
    def hinted(self) -> tuple[int, ...]:
        """Batch positions of the frames that carry colour hints."""
        if self.hints is None:
            return ()
        return tuple(torch.nonzero(self.hints[:, 2].flatten(1).amax(1) > 0).flatten().tolist())

    def with_keys(self, keys: Sequence[int]) -> FrameBatch:
        return replace(self, keys=tuple(keys), predicted=None)

    def with_prediction(self, predicted: torch.Tensor) -> FrameBatch:
        return replace(self, predicted=predicted)

    def __getitem__(self, part: slice) -> FrameBatch:
        """Frames ``part`` (a step-1 slice) of the batch, their indices kept."""
        start, stop, step = part.indices(len(self))
        if step != 1 or stop <= start:
            raise ValueError(f"a frame batch is cut by non-empty step-1 slices, not {part}")
        keep = [k for k in self.keys if start <= k < stop]
        predicted = None
        if self.predicted is not None:
            predicted = self.predicted[[self.keys.index(k) for k in keep]]
        return FrameBatch(
            first_index=self.first_index + start,
            pts=self.pts[start:stop],
            time_base=self.time_base,
            y=self.y[start:stop],
            luma=self.luma[start:stop],
            hints=self.hints[start:stop] if self.hints is not None else None,
            references={i - start: c for i, c in self.references.items() if start <= i < stop},
            keys=tuple(k - start for k in keep),
            predicted=predicted,
        )
