"""``vidcolor run IN OUT``: colorize one video file."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vidcolor.cli.common import app, err_console, handle_errors, show_progress, unwrap
from vidcolor.cli.options import SettingValues, check_report_name, setting_options
from vidcolor.errors import OutputError

RUN_HELP = """Colorize a black-and-white video file IN into OUT.

The model predicts only colour: OUT keeps IN's luminance plane untouched (detail and exposure are
never altered), its frame count and timestamps (constant or variable frame rate), resolution,
rotation, colour tags and container metadata. Every audio and subtitle stream is copied packet for
packet (audio is re-encoded, with a warning, only where OUT's container cannot hold it).
Already-coloured input is recoloured from its luminance: its own colours are discarded.

OUT's container comes from its extension (.mp4 .mkv .mov .webm .avi .ts .mxf .nut). OUT is written
to a hidden temporary file beside it and renamed only when complete; an error or Ctrl-C leaves
nothing behind. IN is never modified.

\b
Examples:
  vidcolor run film.mp4 film-colour.mp4
  vidcolor run film.mkv master.mkv --codec ffv1          (lossless video)
  vidcolor run film.mp4 out.mp4 --render-factor 12 --keyframe-interval auto --report run.json
  vidcolor run film.mp4 out.mp4 --hints hints/          (colour painted on frames)
  vidcolor run film.mp4 preview.mp4 --frames 1200:1450  (a ten-second preview from frame 1200)
  vidcolor run film.mp4 out.mp4 --reference keys/      (frames you coloured, from `vidcolor keyframes film.mp4 -o keys`)

Shots: a scene cut (a jump in the luma histogram, or a frame that flow cannot match to the one
before) starts a new shot; no colour is carried across it. Inside a shot colour is carried along the
optical flow both ways in time over a short look-ahead, so it neither flickers nor lags. A reference
replaces the colour of its frame and is carried through its shot: forward to the shot's end, back
over the look-ahead (16 frames); between two references both are blended, and far from any reference
(or where the motion was lost) the model takes over gradually. A reference's size must be the film's
and its luma its frame's (a wrong frame is refused, naming the frame that matches best); its luma is
never used: OUT keeps IN's."""


class _StopFlag:
    """Ctrl-C sets a flag the pipeline polls between batches, so it can clean up in order;
    a second Ctrl-C interrupts at once (the writer still deletes its partial file)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.event.is_set()


# The command's options (kept here so its signature reads as a list of names).
_RUN_COMMAND_INPUT = typer.Argument(
    ..., help="Black-and-white (or any) video file to colorize.", show_default=False, metavar="IN"
)
_RUN_COMMAND_OUTPUT = typer.Argument(
    ..., help="Output video file; its extension chooses the container.", show_default=False, metavar="OUT"
)
_RUN_COMMAND_OVERWRITE = typer.Option(False, "--overwrite", "-y", help="Replace OUT if it exists.")
_RUN_COMMAND_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar or summary.")
_RUN_COMMAND_FRAMES = typer.Option(
    None,
    "--frames",
    help="Only frames A to B-1 (A:B, A: or :B; counted from 0 as references and hints are): a quick preview. "
    "OUT starts at frame A with that stretch's audio; anchors outside it are not used.",
    show_default=False,
    metavar="A:B",
)
_RUN_COMMAND_REPORT = typer.Option(
    None, "--report", help="Write a JSON report (streams, frames, timings, warnings) to this file."
)


@app.command("run", help=unwrap(RUN_HELP))
@handle_errors
@setting_options
def run_command(
    input: Path = _RUN_COMMAND_INPUT,
    output: Path = _RUN_COMMAND_OUTPUT,
    overwrite: bool = _RUN_COMMAND_OVERWRITE,
    quiet: bool = _RUN_COMMAND_QUIET,
    report: Path = _RUN_COMMAND_REPORT,
    frames: str = _RUN_COMMAND_FRAMES,
    *,
    settings_given: SettingValues,
) -> None:
    from vidcolor.media.excerpt import FrameRange
    from vidcolor.media.outfile import check_side_output
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RunSettings
    from vidcolor.video.anchors import AnchorFiles
    from vidcolor.video.run import prepare_run

    check_report_name(report)
    span = FrameRange.parse(frames) if frames is not None else None
    settings = RunSettings().override(settings_given.sections())
    # Validate paths, input and output settings before loading a model: a typo fails in milliseconds.
    prepared = prepare_run(input, output, settings.encode, overwrite)
    if report is not None:
        check_side_output(report, "--report", [input, output])
    anchors = AnchorFiles.from_paths(**settings_given.anchors())
    model = load_model(settings.model)
    with _StopFlag() as stop:
        options = {
            "anchors": anchors,
            "overwrite": overwrite,
            "should_stop": stop,
            "prepared": prepared,
            "frames": span,
        }
        result = _run_with_progress(input, output, model, settings, options, quiet)
    _finish(result, output, report, quiet)


def _run_with_progress(
    input: Path, output: Path, model: Any, settings: Any, options: dict[str, Any], quiet: bool
) -> Any:
    from vidcolor.video.run import colorize_video

    if not show_progress(quiet):
        return colorize_video(input, output, model, settings, **options)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} fps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(input.name, total=None, fps=0.0)

        def on_progress(done: int, total: int | None) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(task, completed=done, total=total, fps=done / elapsed if elapsed else 0.0)

        return colorize_video(input, output, model, settings, progress=on_progress, **options)


def _finish(result: Any, output: Path, report: Path | None, quiet: bool) -> None:
    """Write the report, print the warnings and the summary line."""
    from vidcolor.media.outfile import atomic_write

    if report is not None:
        text = (result.to_json() + "\n").encode()
        try:
            atomic_write(report, lambda f: f.write(text), overwrite=True)
        except OSError as exc:  # a full disk: OUT is complete, the report could not be written
            raise OutputError(
                f"--report {report}: cannot be written ({exc.strerror or exc}); {output} is complete"
            ) from None
    if not quiet:
        for warning in result.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        err_console.print(
            f"{output}: {result.frames} frames in {result.seconds['wall']:.1f} s ({result.fps:.1f} fps)", soft_wrap=True
        )
