"""The prepare stage: decoded frames -> ``FrameBatch``es ready for the temporal stage and the model.

Each frame keeps its own Y samples (only re-depthed or edge-padded where the output format needs
it: vidcolor.media.frames.fit_luma) for the compose step, and gets its luma at the model's
render size (the coded frame's, padding included, so colour lines up with the padded planes),
plus the hint planes and reference chroma a person gave for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F

from vidcolor.colorizer import Colorizer
from vidcolor.media.frames import fit_luma
from vidcolor.media.plan import OutputPlan
from vidcolor.media.reader import DecodedBatch
from vidcolor.video.anchors import FilmAnchors
from vidcolor.video.frames import FrameBatch


def pad_luma(luma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B,1,h,w) luma edge-padded at the bottom right to the coded ``height`` x ``width``."""
    ph, pw = height - luma.shape[-2], width - luma.shape[-1]
    if ph or pw:
        luma = F.pad(luma, (0, pw, 0, ph), mode="replicate")
    return luma


class Preparer:
    """Turns the reader's decoded batches into frame batches for one output plan."""

    def __init__(self, colorizer: Colorizer, plan: OutputPlan, anchors: FilmAnchors) -> None:
        self.colorizer, self.plan, self.anchors = colorizer, plan, anchors

    def prepare(self, decoded: DecodedBatch, first_index: int) -> FrameBatch:
        plan = self.plan
        luma = self.colorizer.prepare(pad_luma(decoded.luma, plan.height, plan.width))
        return FrameBatch(
            first_index=first_index,
            pts=tuple(decoded.pts),
            time_base=decoded.time_base,
            y=fit_luma(decoded.y_planes, decoded.bits, plan.bits, plan.height, plan.width),
            luma=luma,
            hints=self.anchors.hint_planes(first_index, luma),
            references=self.anchors.references_for(first_index, len(decoded)),
        )

    def __call__(self, decoded: Iterable[DecodedBatch]) -> Iterator[FrameBatch]:
        """Frame batches in film order, counted from frame 0."""
        index = 0
        for batch in decoded:
            yield self.prepare(batch, index)
            index += len(batch)
