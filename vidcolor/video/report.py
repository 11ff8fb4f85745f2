"""What a film's run reports: its input and output, the settings, counts and time per stage.

``build_report`` is the one place that turns a finished run into a ``RunReport`` (``--report``
writes it as JSON; the batch engine keeps it per item).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidcolor.errors import VidcolorError
from vidcolor.media.probe import probe


@dataclass
class RunReport:
    input: dict[str, Any]
    output: dict[str, Any]
    model: dict[str, Any]
    settings: dict[str, Any]
    frames: int
    expected_frames: int | None  # what the container announces (or duration x rate); None if unknown
    skipped_packets: int
    copied_side_packets: int
    # Busy time per stage: decode, model (the network, on the model thread or inline), stage (the
    # main thread's resize + temporal stage, waits for the model included), compose, encode; and
    # wall, the elapsed time.
    seconds: dict[str, float]
    fps: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


class StageClock:
    """Busy seconds per stage of a run (decode and encode are timed by their own threads)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {"stage": 0.0, "compose": 0.0}

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    @property
    def wall(self) -> float:
        return time.perf_counter() - self.start


def output_summary(dst: Path) -> dict[str, Any]:
    try:
        return probe(dst).summary()
    except VidcolorError as exc:  # written but not probe-able: say so rather than fail the run
        return {"path": str(dst), "error": str(exc)}


@dataclass(frozen=True)
class RunFacts:
    """What a finished run knows, gathered for its report."""

    src: Path
    dst: Path
    media: Any  # vidcolor.media.probe.MediaInfo
    plan: Any  # vidcolor.media.plan.OutputPlan
    model: Any  # the ColorModel's ModelInfo
    settings: dict[str, Any]
    frames: int
    reader: Any  # the VideoReader, closed
    writer: Any  # the VideoWriter, finished
    unused_hints: list[int]


def run_warnings(facts: RunFacts) -> list[str]:
    reader, total = facts.reader, facts.media.video.estimated_frames
    warnings = list(facts.writer.stats.warnings) + list(reader.warnings)
    if reader.skipped_packets:
        warnings.append(f"{reader.skipped_packets} damaged video packet(s) skipped")
    if reader.corrupt_packets:
        warnings.append(
            f"{reader.corrupt_packets} video packet(s) flagged corrupt by the demuxer (decoded as far as possible)"
        )
    if facts.unused_hints:
        listed = ", ".join(map(str, facts.unused_hints))
        warnings.append(f"hints for frame(s) {listed} were not used: the film has {facts.frames} frames")
    decoded = reader.decoded  # frames decoded: an excerpt's run decodes those before it too
    cut_short = reader.span.stop is not None and decoded > reader.span.stop  # an excerpt ends by itself
    if total and not cut_short and decoded < total - max(1, total // 100):
        # the demuxer resyncs past damage without telling the decoder: the deficit is the evidence
        warnings.append(
            f"{total - decoded} of the ~{total} frames the input announces could not be decoded (damaged or cut short)"
        )
    return warnings


def build_report(facts: RunFacts, clock: StageClock, model_seconds: float) -> RunReport:
    wall = clock.wall
    return RunReport(
        input=facts.media.summary(),
        output=output_summary(facts.dst),
        model={"name": facts.model.name, "version": facts.model.version, "sha256": facts.model.sha256},
        settings=facts.settings,
        frames=facts.frames,
        expected_frames=facts.media.video.estimated_frames,
        skipped_packets=facts.reader.skipped_packets,
        copied_side_packets=facts.writer.stats.side_packets,
        seconds={
            "decode": round(facts.reader.decode_seconds, 3),
            "model": round(model_seconds, 3),
            "stage": round(clock.seconds["stage"], 3),
            "compose": round(clock.seconds["compose"], 3),
            "encode": round(facts.writer.stats.encode_seconds, 3),
            "wall": round(wall, 3),
        },
        fps=round(facts.frames / wall, 3) if wall > 0 else 0.0,
        warnings=run_warnings(facts),
    )
