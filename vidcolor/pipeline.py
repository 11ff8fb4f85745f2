"""Colorize one video file: reader -> colorizer -> temporal stage -> compose -> writer.

Decode, model and encode run at the same time: the reader and the writer each own a thread and
a bounded queue, the model runs on the calling thread (torch, PyAV and OpenCV release the GIL).
Memory is bounded by the queue sizes and the batch size, never by the film's length.

``colorize_video`` is the one entry point (the CLI and the batch engine call it); it never prints:
progress goes to the ``progress`` callback and everything else into the returned ``RunReport``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from vidcolor.colorizer import Colorizer
from vidcolor.config import EncodeConfig, RenderConfig, TemporalConfig
from vidcolor.errors import InputError, OutputError, VidcolorError
from vidcolor.hints import Hints, hint_planes, read_hint_picture
from vidcolor.media.frames import ComposedBatch, chroma_planes, fit_luma, pad_luma_tensor
from vidcolor.media.outfile import check_output_file
from vidcolor.media.plan import OutputPlan, plan_output
from vidcolor.media.probe import MediaInfo, probe
from vidcolor.media.reader import VideoReader
from vidcolor.media.writer import VideoWriter
from vidcolor.model_thread import AheadPrediction, ModelThread, torch_threads
from vidcolor.models.base import ColorModel
from vidcolor.references import check_references, read_references, thumbnail
from vidcolor.temporal import build_stage

Progress = Callable[[int, "int | None"], None]  # (frames done, expected total or None)


class RunCancelled(VidcolorError):
    """``should_stop`` asked the run to end; nothing was left on disk."""

    exit_code = 130


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


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse OUT == IN (whatever the spelling), an existing OUT without ``overwrite``, a missing folder."""
    if not src.exists():  # the input's problem first: it is the one the user must fix
        raise InputError(f"{src}: no such file")
    check_output_file(dst, overwrite, [src])


@dataclass(frozen=True)
class PreparedRun:
    """A run's paths checked, its input probed and its output planned: what can fail before a
    model is loaded (the CLI prepares first, so a typo fails in milliseconds)."""

    src: Path
    dst: Path
    media: MediaInfo
    plan: OutputPlan


def prepare_run(src: str | Path, dst: str | Path, encode: EncodeConfig = EncodeConfig(), overwrite: bool = False) -> PreparedRun:
    """Check the paths (``check_paths``), probe IN and plan OUT; VidcolorError on any problem."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, overwrite)
    media = probe(src)
    return PreparedRun(src, dst, media, plan_output(dst, media, encode))


def colorize_video(
    src: str | Path,
    dst: str | Path,
    model: ColorModel | str,
    render: RenderConfig = RenderConfig(),
    temporal: TemporalConfig = TemporalConfig(),
    encode: EncodeConfig = EncodeConfig(),
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    hints: Mapping[int, Path] | None = None,
    references: Mapping[int, Path] | None = None,
    prepared: PreparedRun | None = None,
) -> RunReport:
    """Colorize ``src`` into ``dst``; returns what happened. Raises a VidcolorError on bad input or
    output, ``RunCancelled`` when ``should_stop`` returns True; OUT appears only when complete.
    ``hints``: {frame index: hints picture} (vidcolor.hints.frame_hint_pictures), for a hint model.
    ``references``: {frame index: colour picture of that frame} (vidcolor.references).
    ``prepared``: ``prepare_run(src, dst, encode, overwrite)``'s result when the caller has it."""
    t_start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if prepared is None or (prepared.src, prepared.dst) != (src, dst):
        prepared = prepare_run(src, dst, encode, overwrite)
    media, plan = prepared.media, prepared.plan
    if isinstance(model, str):
        from vidcolor.models.registry import load_model

        model = load_model(model)
    # On the CPU the model (ONNX Runtime) runs on one thread beside the other stages
    # (vidcolor.model_thread): two threads for it alone cost more CPU time than they save on a
    # 2-core machine (RESULTS.md, "Speed v2"). The setting means nothing to a CUDA backend.
    colorizer = Colorizer(model, render, video=True, threads=1)
    frame_hints = _load_frame_hints(hints, media, plan, colorizer) if hints else {}
    render_size = colorizer.render_size(plan.height, plan.width)
    anchors = _load_references(src, media, plan, references, render_size, colorizer.device) if references else {}
    stage = build_stage(temporal)
    stage.reset()
    matrix = plan.matrix
    chroma_fmt = av.VideoFormat(plan.pix_fmt)
    chroma_size = (chroma_fmt.chroma_height(plan.height), chroma_fmt.chroma_width(plan.width))
    total = media.video.estimated_frames
    stage_s = compose_s = 0.0
    model_s = 0.0  # busy in the model, on whichever thread ran it (one runs at a time)
    frames = 0

    def predict(small: torch.Tensor, planes: torch.Tensor | None = None) -> torch.Tensor:
        # the stage decides which frames the model colours (planes: hints)
        nonlocal model_s
        t0 = time.perf_counter()
        try:
            return colorizer.predict(small, matrix, planes)
        finally:
            model_s += time.perf_counter() - t0

    held = _HeldFrames()  # decoded frames whose chroma the stage has not handed back yet

    def write(cbcr: torch.Tensor, writer: VideoWriter) -> float:
        if len(cbcr) == 0:
            return 0.0
        t0 = time.perf_counter()
        y, pts, time_base = held.take(len(cbcr))
        uv = chroma_planes(cbcr, chroma_size, plan.bits, plan.full_range)
        writer.put(ComposedBatch(y=y, uv=uv, pts=pts, time_base=time_base))
        return time.perf_counter() - t0

    # Anchors (references, hinted frames) are found again by feature matching where their
    # tracking is lost; a film without them never computes features.
    describe = colorizer.describe if (anchors or frame_hints) and colorizer.describes else None
    ahead = ModelThread(predict) if stage.predicts_every_frame else None
    waiting: _Batch | None = None  # read and submitted to the model thread, not yet pushed

    def finish(item: _Batch, writer: VideoWriter) -> None:
        nonlocal stage_s, compose_s, frames
        t0 = time.perf_counter()
        held.put(item.y, item.pts, item.time_base)
        cbcr = stage.push(item.small, item.predict, item.hints, item.refs, describe)
        stage_s += time.perf_counter() - t0
        compose_s += write(cbcr, writer)
        frames += len(item.pts)
        if progress is not None:
            progress(frames, max(total, frames) if total else None)

    try:
        with torch_threads(1 if colorizer.device.type == "cpu" else None), VideoReader(
            src, media.video, batch_size=render.batch_size
        ) as reader, VideoWriter(
            src, media, plan, threads=encode.threads, queue_batches=max(1, encode.queue_frames // max(1, render.batch_size))
        ) as writer:
            read = 0
            for batch in reader:
                if should_stop is not None and should_stop():
                    raise RunCancelled(f"stopped after {frames} frames; {dst.name} was not written")
                t0 = time.perf_counter()
                small = colorizer.prepare(pad_luma_tensor(batch.luma, plan.height, plan.width))
                planes = _batch_hints(frame_hints, read, small)
                item = _Batch(
                    y=fit_luma(batch.y_planes, batch.bits, plan.bits, plan.height, plan.width),
                    pts=list(batch.pts),
                    time_base=batch.time_base,
                    small=small,
                    hints=planes,
                    refs={i: anchors[read + i] for i in range(len(batch)) if read + i in anchors},
                    predict=ahead.submit(small, planes) if ahead is not None else predict,
                )
                read += len(batch)
                stage_s += time.perf_counter() - t0
                if waiting is not None:
                    finish(waiting, writer)
                waiting = item
            if waiting is not None:
                finish(waiting, writer)
                waiting = None
            if should_stop is not None and should_stop():
                raise RunCancelled(f"stopped after {frames} frames; {dst.name} was not written")
            t0 = time.perf_counter()
            rest = stage.flush()
            stage_s += time.perf_counter() - t0
            compose_s += write(rest, writer)
            writer.finish()
    finally:
        if waiting is not None and isinstance(waiting.predict, AheadPrediction):
            waiting.predict.wait()
        if ahead is not None:
            ahead.close()
    if frames == 0:
        dst.unlink(missing_ok=True)
        raise OutputError(f"{src}: no video frame could be decoded; nothing was written")
    wall = time.perf_counter() - t_start
    warnings = list(writer.stats.warnings) + list(reader.warnings)
    if reader.skipped_packets:
        warnings.append(f"{reader.skipped_packets} damaged video packet(s) skipped")
    if reader.corrupt_packets:
        warnings.append(f"{reader.corrupt_packets} video packet(s) flagged corrupt by the demuxer (decoded as far as possible)")
    unused = sorted(i for i in frame_hints if i >= frames)
    if unused:
        warnings.append(f"hints for frame(s) {', '.join(map(str, unused))} were not used: the film has {frames} frames")
    if total and frames < total - max(1, total // 100):
        # the demuxer resyncs past damage without telling the decoder: the deficit is the evidence
        warnings.append(f"{total - frames} of the ~{total} frames the input announces could not be decoded (damaged or cut short)")
    return RunReport(
        input=media.summary(),
        output=_output_summary(dst),
        model={"name": model.info.name, "version": model.info.version, "sha256": model.info.sha256},
        settings={
            "render_factor": colorizer.render_factor,
            "render_size": list(colorizer.render_size(plan.height, plan.width)),
            "batch_size": render.batch_size,
            "device": str(colorizer.device),
            "backend": colorizer.backend,
            "temporal": asdict(temporal),
            "codec": plan.codec,
            "pix_fmt": plan.pix_fmt,
            "encoder_options": plan.options,
            "matrix": matrix,
            "size": [plan.width, plan.height],
            "hinted_frames": sorted(frame_hints),
            "reference_frames": sorted(anchors),
        },
        frames=frames,
        expected_frames=total,
        skipped_packets=reader.skipped_packets,
        copied_side_packets=writer.stats.side_packets,
        seconds={
            "decode": round(reader.decode_seconds, 3),
            "model": round(model_s, 3),
            "stage": round(stage_s, 3),
            "compose": round(compose_s, 3),
            "encode": round(writer.stats.encode_seconds, 3),
            "wall": round(wall, 3),
        },
        fps=round(frames / wall, 3) if wall > 0 else 0.0,
        warnings=warnings,
    )


def _load_frame_hints(hints: Mapping[int, Path], media: MediaInfo, plan: OutputPlan, colorizer: Colorizer) -> dict[int, list[Hints]]:
    """Every hints picture read and checked against the film before any work (one-line errors)."""
    colorizer.require_hints()
    total = media.video.frames
    loaded: dict[int, list[Hints]] = {}
    for index, path in sorted(hints.items()):
        if total and index >= total:
            raise InputError(f"{path}: frame {index} is past the film's end ({total} frames, counted from 0)")
        part = read_hint_picture(path, media.video.height, media.video.width)
        # Coordinates hold in the coded frame (padding, where the codec needs it, is at the bottom right).
        loaded[index] = [replace(part, height=plan.height, width=plan.width)]
    return loaded


@dataclass
class _Batch:
    """One decoded batch on its way to the stage: the frames' Y planes at the output's depth, their
    timestamps, render-size luma, hint planes, references, and the model call (or its result
    under way on the model thread)."""

    y: np.ndarray
    pts: list[int]
    time_base: Fraction
    small: torch.Tensor
    hints: torch.Tensor | None
    refs: dict[int, torch.Tensor]
    predict: Callable[..., torch.Tensor]


class _HeldFrames:
    """Decoded Y planes (and timestamps) waiting for their chroma: at most the stage's look-ahead
    plus a batch, whatever the film's length."""

    def __init__(self) -> None:
        self._parts: deque[tuple[np.ndarray, list[int], Fraction]] = deque()

    def put(self, y: np.ndarray, pts: list[int], time_base: Fraction) -> None:
        self._parts.append((y, list(pts), time_base))

    def take(self, count: int) -> tuple[np.ndarray, list[int], Fraction]:
        """The ``count`` oldest frames, as one batch."""
        ys: list[np.ndarray] = []
        pts: list[int] = []
        time_base = self._parts[0][2]
        while count > 0:
            y, p, tb = self._parts[0]
            if len(p) <= count:
                self._parts.popleft()
                ys.append(y)
                pts.extend(p)
                count -= len(p)
            else:
                ys.append(y[:count])
                pts.extend(p[:count])
                self._parts[0] = (y[count:], p[count:], tb)
                count = 0
        return (ys[0] if len(ys) == 1 else np.concatenate(ys)), pts, time_base


def _load_references(
    src: Path, media: MediaInfo, plan: OutputPlan, pictures: Mapping[int, Path], size: tuple[int, int], device: torch.device
) -> dict[int, torch.Tensor]:
    """Every reference read and checked (size now; luma against its frame by a quick decode up to
    the last reference), then turned into render-size CbCr anchors on ``device``."""
    refs = read_references(dict(pictures), media.video.height, media.video.width, plan.matrix, media.video.frames or None)
    times: list[float] = []

    def thumbs() -> Iterator[torch.Tensor]:
        with VideoReader(src, media.video, batch_size=16) as reader:
            for batch in reader:
                times.extend(float(p * batch.time_base) for p in batch.pts)
                yield thumbnail(batch.luma)

    scan = thumbs()
    try:
        check_references(refs, scan, times)
    finally:
        scan.close()  # stops the decode as soon as every reference is matched
    return {r.frame: r.chroma(size, (plan.height, plan.width), plan.matrix).to(device) for r in refs}


def _batch_hints(frame_hints: dict[int, list[Hints]], first: int, small: torch.Tensor) -> torch.Tensor | None:
    """Hint planes (B,3,h,w) for the batch of frames first..first+B-1, or None when none is hinted."""
    n, size = small.shape[0], (int(small.shape[-2]), int(small.shape[-1]))
    hinted = [i for i in range(n) if first + i in frame_hints]
    if not hinted:
        return None
    planes = small.new_zeros(n, 3, *size)
    for i in hinted:
        planes[i] = hint_planes(frame_hints[first + i], size)[0].to(planes.device)
    return planes


def _output_summary(dst: Path) -> dict[str, Any]:
    try:
        return probe(dst).summary()
    except VidcolorError as exc:  # written but not probe-able: say so rather than fail the run
        return {"path": str(dst), "error": str(exc)}
