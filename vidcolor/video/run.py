"""Colorize one film: decode -> prepare -> temporal plan -> model -> temporal push -> compose -> encode.

Each stage is an object in a file of this folder, over one frame batch type (frames.py); this
module only wires them. Decode and encode run on threads of their own (vidcolor.media), the model
on another (model_runner.py), so the model colours batch k+1 while this thread pushes batch k
through the temporal stage and composes it; every queue is bounded, so memory never grows with
the film's length. ``colorize_video`` is the entry point (the CLI, the batch engine and the
benchmarks call it); it never prints: progress goes to the ``progress`` callback and everything
else into the returned ``RunReport``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from vidcolor.colorizer import Colorizer
from vidcolor.errors import InputError, OutputError, VidcolorError
from vidcolor.media.excerpt import FrameRange
from vidcolor.media.outfile import check_output_file
from vidcolor.media.plan import EncodeConfig, OutputPlan, plan_output
from vidcolor.media.probe import MediaInfo, probe
from vidcolor.media.reader import VideoReader
from vidcolor.media.writer import VideoWriter
from vidcolor.models.base import ColorModel
from vidcolor.settings import RunSettings
from vidcolor.video.anchors import AnchorFiles, FilmAnchors, load_anchors
from vidcolor.video.compose import Composer, HeldFrames
from vidcolor.video.frames import FrameBatch
from vidcolor.video.model_runner import ModelRunner, torch_threads
from vidcolor.video.prepare import Preparer
from vidcolor.video.report import RunFacts, RunReport, StageClock, build_report
from vidcolor.video.temporal import ChromaStage, Finished, build_stage

Progress = Callable[[int, "int | None"], None]  # (frames done, expected total or None)


class RunCancelled(VidcolorError):
    """``should_stop`` asked the run to end; nothing was left on disk."""

    exit_code = 130


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


def prepare_run(
    src: str | Path, dst: str | Path, encode: EncodeConfig = EncodeConfig(), overwrite: bool = False
) -> PreparedRun:
    """Check the paths (``check_paths``), probe IN and plan OUT; VidcolorError on any problem."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, overwrite)
    media = probe(src)
    return PreparedRun(src, dst, media, plan_output(dst, media, encode))


@dataclass
class _Output:
    """The run's way out: finished chroma joined to its held frames, composed, handed to the writer."""

    held: HeldFrames
    composer: Composer
    writer: VideoWriter
    clock: StageClock

    def write(self, finished: Finished | None) -> None:
        if finished is None or not len(finished):
            return
        with self.clock.timing("compose"):
            frames = self.held.take(finished.first_index, len(finished))
            self.writer.put(self.composer.compose(frames, finished.chroma))


def _composer(plan: OutputPlan) -> Composer:
    fmt = av.VideoFormat(plan.pix_fmt)
    return Composer((fmt.chroma_height(plan.height), fmt.chroma_width(plan.width)), plan.bits, plan.full_range)


def colorize_video(
    src: str | Path,
    dst: str | Path,
    model: ColorModel | str,
    settings: RunSettings = RunSettings(),
    *,
    anchors: AnchorFiles = AnchorFiles(),
    overwrite: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    prepared: PreparedRun | None = None,
    frames: FrameRange | None = None,
) -> RunReport:
    """Colorize ``src`` into ``dst`` with ``model`` (a ColorModel, or a ``--model`` value); returns
    what happened. VidcolorError on bad input or output, ``RunCancelled`` when ``should_stop`` says
    so; OUT appears only when complete. ``anchors``: the film's reference and hints pictures.
    ``prepared``: ``prepare_run(src, dst, settings.encode, overwrite)``, when the caller has it.
    ``frames``: only these frames (a preview): OUT starts at frame A, with the anchors on A..B-1
    and the audio and subtitles of that stretch."""
    clock = StageClock()
    src, dst = Path(src), Path(dst)
    if prepared is None or (prepared.src, prepared.dst) != (src, dst):
        prepared = prepare_run(src, dst, settings.encode, overwrite)
    media, plan = prepared.media, prepared.plan
    if isinstance(model, str):
        from vidcolor.models.registry import load_model

        model = load_model(model)
    # On the CPU the model (ONNX Runtime) runs on one thread beside the other stages: two threads
    # for it alone cost more CPU time than they save on a 2-core machine (RESULTS.md, "Speed v2").
    colorizer = Colorizer(model, settings.render, video=True, threads=1)
    if anchors.hints:
        colorizer.require_hints()
    span = frames if frames is not None else FrameRange()
    film = _film_anchors(src, prepared, colorizer, anchors, span)
    # Anchors are found again by feature matching where their tracking is lost; a film without
    # them never computes features.
    stage = build_stage(settings.temporal, colorizer.describe if film and colorizer.describes else None)
    runner = ModelRunner(lambda luma, hints: colorizer.predict(luma, plan.matrix, hints))
    with (
        torch_threads(1 if colorizer.device.type == "cpu" else None),
        runner,
        VideoReader(src, media.video, batch_size=settings.render.batch_size, frames=span) as reader,
        _writer(prepared, settings, excerpt=frames is not None) as writer,
    ):
        out = _Output(HeldFrames(), _composer(plan), writer, clock)
        watch = _Watch(progress, should_stop, _expected_frames(media, span), dst)
        done = _stream(reader, Preparer(colorizer, plan, film), stage, runner, out, watch)
        writer.finish()
    if done == 0:
        _nothing_written(dst, span, reader)
    report_settings = _report_settings(settings, colorizer, plan, film) | {"frames": str(span)}
    facts = RunFacts(src, dst, media, plan, model.info, report_settings, done, reader, writer, film.unused_hints(done))
    return build_report(facts, clock, runner.seconds)


def _film_anchors(
    src: Path, prepared: PreparedRun, colorizer: Colorizer, anchors: AnchorFiles, span: FrameRange
) -> FilmAnchors:
    """The anchors on the run's frames, read and checked, numbered from the run's first frame."""
    plan = prepared.plan
    render_size = colorizer.render_size(plan.height, plan.width)
    anchors = anchors.within(span)
    film = load_anchors(src, prepared.media, plan, render_size, colorizer.device, anchors.hints, anchors.references)
    return film.shifted(span.start)


def _writer(prepared: PreparedRun, settings: RunSettings, excerpt: bool) -> VideoWriter:
    return VideoWriter(
        prepared.src,
        prepared.media,
        prepared.plan,
        threads=settings.encode.threads,
        queue_batches=_queue_batches(settings),
        excerpt=excerpt,
    )


def _nothing_written(dst: Path, span: FrameRange, reader: VideoReader) -> None:
    """No frame came out: OUT is removed and the reason raised."""
    dst.unlink(missing_ok=True)
    if span.start:
        raise InputError(
            f"--frames '{span}' starts past the end: {reader.path.name} has {reader.decoded} frames; "
            "nothing was written"
        )
    raise OutputError(f"{reader.path}: no video frame could be decoded; nothing was written")


def _stream(
    reader: VideoReader, preparer: Preparer, stage: ChromaStage, runner: ModelRunner, out: _Output, watch: _Watch
) -> int:
    """Every frame batch prepared, planned, coloured (a batch ahead) and pushed; returns the frames done."""
    done = 0
    in_flight: deque[Future[FrameBatch]] = deque()

    def push(future: Future[FrameBatch]) -> None:
        nonlocal done
        coloured = future.result()
        with out.clock.timing("stage"):
            finished = stage.push(coloured)
        out.write(finished)
        done += len(coloured)
        watch.report(done)

    index = 0
    for decoded in reader:
        watch.check(done)
        with out.clock.timing("stage"):
            planned = stage.plan(preparer.prepare(decoded, index))
        index += len(planned)
        out.held.put(planned)
        in_flight.append(runner.submit(planned))
        if len(in_flight) > 1:
            push(in_flight.popleft())
    while in_flight:
        push(in_flight.popleft())
    watch.check(done)
    with out.clock.timing("stage"):
        out.write(stage.flush())
    return done


@dataclass(frozen=True)
class _Watch:
    """The caller's progress callback and stop flag."""

    progress: Progress | None
    should_stop: Callable[[], bool] | None
    total: int | None  # frames the input announces, if it does
    dst: Path

    def report(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, max(self.total, done) if self.total else None)

    def check(self, done: int) -> None:
        if self.should_stop is not None and self.should_stop():
            raise RunCancelled(f"stopped after {done} frames; {self.dst.name} was not written")


def _expected_frames(media: MediaInfo, span: FrameRange) -> int | None:
    """Frames the run should write: the excerpt's, where the input announces its length."""
    total = media.video.estimated_frames
    if total is None:
        return span.count
    return max(0, min(total, span.stop if span.stop is not None else total) - span.start)


def _queue_batches(settings: RunSettings) -> int:
    """Batches waiting for the encoder: about ``encode.queue_frames`` frames."""
    return max(1, settings.encode.queue_frames // max(1, settings.render.batch_size))


def _report_settings(
    settings: RunSettings, colorizer: Colorizer, plan: OutputPlan, film: FilmAnchors
) -> dict[str, Any]:
    return {
        "render_factor": colorizer.render_factor,
        "render_size": list(colorizer.render_size(plan.height, plan.width)),
        "batch_size": settings.render.batch_size,
        "device": str(colorizer.device),
        "backend": colorizer.backend,
        "temporal": asdict(settings.temporal),
        "codec": plan.codec,
        "pix_fmt": plan.pix_fmt,
        "encoder_options": plan.options,
        "matrix": plan.matrix,
        "size": [plan.width, plan.height],
        "hinted_frames": sorted(film.hints),
        "reference_frames": sorted(film.references),
    }
