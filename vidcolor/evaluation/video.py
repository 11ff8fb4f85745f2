"""Score a colorized film: temporal consistency (E_warp, chroma E_warp, CDC) and, against the
colour original, PSNR and colourfulness; the original's own consistency alongside, for scale.

Streams the videos together (two decoded frames per video in memory, plus a few histograms). The
flow of each pair is computed once, on the INPUT's luma when given (what the colorizer could not
change), and serves every score of that pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import zip_longest
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.color import rgb_to_luma
from vidcolor.errors import InputError
from vidcolor.flow import FlowEstimator
from vidcolor.metrics import (
    COMPONENTS,
    METRIC_FLOW,
    ColourConsistency,
    colourfulness,
    pair_warp_error,
    psnr,
    warp_geometry,
)


def decode_rgb(path: Path, role: str) -> Iterator[np.ndarray]:
    """Decoded frames of ``path``'s first video stream as (H,W,3) uint8 RGB; errors as InputError."""
    if not path.is_file():
        raise InputError(f"{role} {path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{role} {path}: has no video stream")
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise InputError(f"{role} {path}: cannot decode video ({exc})") from None


class _Consistency:
    """E_warp of the three components and CDC, for one film, from shared per-pair geometry."""

    def __init__(self) -> None:
        self.sums = {name: [0.0, 0] for name in COMPONENTS}
        self.cdc = ColourConsistency()
        self._prev: torch.Tensor | None = None

    def update(self, rgb: torch.Tensor, geometry: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.cdc.update(rgb)
        if self._prev is not None and geometry is not None:
            for name, component in COMPONENTS.items():
                sse, n = pair_warp_error(component(self._prev), component(rgb), *geometry)
                if n > 0:
                    self.sums[name][0] += sse / n
                    self.sums[name][1] += 1
        self._prev = rgb

    def scores(self) -> dict[str, float | None]:
        names = {"rgb": "ewarp", "colour": "ewarp_colour", "chroma": "ewarp_chroma"}
        out: dict[str, float | None] = {
            names[k]: (total / count if count else None) for k, (total, count) in self.sums.items()
        }
        cdc = self.cdc.value
        out["cdc"] = None if np.isnan(cdc) else cdc
        return out


def score_video(
    pred: Path, truth: Path | None = None, input_: Path | None = None, on_frame: Callable[[int], None] | None = None
) -> dict:
    """Scores of PRED (and of the truth's own consistency, with ``truth``); see the module docstring."""
    estimator = FlowEstimator(METRIC_FLOW)
    mine, theirs = _Consistency(), _Consistency()
    psnrs: list[float] = []
    colourful_pred: list[float] = []
    colourful_truth: list[float] = []
    streams = [
        decode_rgb(pred, "PRED"),
        decode_rgb(truth, "--truth") if truth else iter(()),
        decode_rgb(input_, "--input") if input_ else iter(()),
    ]
    frames = 0
    prev_luma: torch.Tensor | None = None
    for p, t, g in zip_longest(*streams):
        if p is None or (truth and t is None) or (input_ and g is None):
            counts = f"PRED ended at frame {frames}" if p is None else f"PRED has more than {frames} frames"
            raise InputError(f"the videos differ in length ({counts}); they must have the same frames")
        for other, role in ((t, "--truth"), (g, "--input")):
            if other is not None and other.shape != p.shape:
                raise InputError(
                    f"{role} is {other.shape[1]}x{other.shape[0]}, PRED {p.shape[1]}x{p.shape[0]}: sizes must match"
                )
        rgb = torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255.0
        luma = rgb_to_luma(rgb if g is None else torch.from_numpy(g).permute(2, 0, 1)[None].float() / 255.0)
        geometry = warp_geometry(prev_luma, luma, estimator) if prev_luma is not None else None
        prev_luma = luma
        mine.update(rgb, geometry)
        colourful_pred.append(float(colourfulness(rgb)))
        if t is not None:
            truth_rgb = torch.from_numpy(t).permute(2, 0, 1)[None].float() / 255.0
            theirs.update(truth_rgb, geometry)
            psnrs.append(float(psnr(rgb, truth_rgb)))
            colourful_truth.append(float(colourfulness(truth_rgb)))
        frames += 1
        if on_frame is not None:
            on_frame(frames)
    if frames == 0:
        raise InputError(f"PRED {pred}: no video frames decoded")
    result: dict = {"pred": str(pred), "frames": frames, "flow_from": "input" if input_ else "pred", **mine.scores()}
    result["colourfulness"] = float(np.mean(colourful_pred))
    if truth:
        result.update(truth=str(truth), psnr=float(np.mean(psnrs)), colourfulness_truth=float(np.mean(colourful_truth)))
        result["truth_scores"] = theirs.scores()
    return result
