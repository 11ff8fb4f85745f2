"""``vidcolor run IN OUT``: colorize one video file."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vidcolor.cli.common import app, err_console, handle_errors, show_progress
from vidcolor.errors import OutputError

RUN_HELP = """Colorize a black-and-white video file IN into OUT.

The model predicts only colour: OUT keeps IN's luminance plane untouched (detail and exposure are
never altered), its frame count and timestamps (constant or variable frame rate), resolution,
rotation, colour tags and container metadata. Every audio and subtitle stream is copied packet
for packet (audio is re-encoded, with a warning, only where OUT's container cannot hold it).
Already-coloured input is recoloured from its luminance: its own colours are discarded.

OUT's container comes from its extension (.mp4 .mkv .mov .webm .avi .ts .mxf .nut). OUT is
written to a hidden temporary file beside it and renamed only when complete; an error or Ctrl-C
leaves nothing behind. IN is never modified.

Examples:\n
  vidcolor run film.mp4 film-colour.mp4\n
  vidcolor run film.mkv master.mkv --codec ffv1          (lossless video)\n
  vidcolor run film.mp4 out.mp4 --render-factor 12 --keyframe-interval auto --report run.json\n
  vidcolor run film.mp4 out.mp4 --hints hints/          (colour painted on frames)\n
  vidcolor run film.mp4 out.mp4 --reference keys/      (frames you coloured, from `vidcolor keyframes film.mp4 -o keys`)

Shots: a scene cut (a jump in the luma histogram, or a frame that flow cannot match to the one
before) starts a new shot; no colour is carried across it. Inside a shot colour is carried along
the optical flow both ways in time over a short look-ahead, so it neither flickers nor lags.
A reference replaces the colour of its frame and is carried through its shot: forward to the
shot's end, back over the look-ahead (16 frames); between two references both are blended, and
far from any reference (or where the motion was lost) the model takes over gradually. A
reference's size must be the film's and its luma its frame's (a wrong frame is refused, naming the
frame that matches best); its luma is never used: OUT keeps IN's.
"""


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


@app.command("run", help=RUN_HELP)
@handle_errors
def run_command(
    input: Path = typer.Argument(..., help="Black-and-white (or any) video file to colorize.", show_default=False, metavar="IN"),
    output: Path = typer.Argument(..., help="Output video file; its extension chooses the container.", show_default=False, metavar="OUT"),
    model: str = typer.Option(
        "default", "--model", "-m", help="Registered model name, 'default', a vidcolor .safetensors file, an exported .onnx file, or deoldify-KIND:PATH (KIND artistic, stable, video)."
    ),
    render_factor: int = typer.Option(
        None, "--render-factor", "-r", help="Model input size = factor x 16 pixels (4..128); higher is slower and finer. Default: the model's video default."
    ),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Frames per model call (memory grows with it).", min=1),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    backend: str = typer.Option(
        "auto", "--backend", help="Model backend: auto (fastest measured within tolerance), eager, channels_last, bf16, fp16 (CUDA), compile, onnx."
    ),
    codec: str = typer.Option(
        None, "--codec", "-c", help="Video encoder: libx264 (default; VP9 for .webm), libx265, ffv1 (lossless), prores_ks, libvpx-vp9."
    ),
    crf: int = typer.Option(18, "--crf", help="Constant rate factor, as in ffmpeg (lower is better; 0 is lossless for x264/x265/VP9)."),
    preset: str = typer.Option("medium", "--preset", help="Encoder speed preset for x264/x265 (ultrafast ... veryslow)."),
    pix_fmt: str = typer.Option(
        None, "--pix-fmt", help="Output pixel format. Default: the input's chroma subsampling and bit depth where the codec allows, else yuv420p."
    ),
    no_temporal: bool = typer.Option(False, "--no-temporal", help="Colour every frame on its own (no flow-guided smoothing)."),
    temporal_strength: float = typer.Option(1.0, "--temporal-strength", help="Weight (0..1) of the colour carried from neighbouring frames where the motion is tracked (1: the fresh prediction only where it is not)."),
    keyframe_interval: str = typer.Option(
        "1", "--keyframe-interval", help="Run the model every N frames and carry colour along the motion between; 'auto' picks key frames by tracking quality."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace OUT if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    report: Path = typer.Option(None, "--report", help="Write a JSON report (streams, frames, timings, warnings) to this file."),
    hints: Path = typer.Option(
        None, "--hints", metavar="DIR", help="Colour hints: PNGs of the frame size, transparent except for painted colour, named by frame index (000120.png). A hint model only."
    ),
    reference: Optional[list[Path]] = typer.Option(
        None,
        "--reference",
        metavar="DIR|FILE",
        help="Reference frames (repeatable): full-size colour pictures of frames, named by frame index (000120.png, or as `vidcolor keyframes` names them); each one's colour is carried through its shot.",
    ),
) -> None:
    from vidcolor.media.outfile import atomic_write, check_side_output
    from vidcolor.models.registry import load_model
    from vidcolor.settings import EncodeConfig, RenderConfig, RunSettings, TemporalConfig
    from vidcolor.video.anchors import AnchorFiles
    from vidcolor.video.run import colorize_video, prepare_run

    if report is not None and report.suffix.lower() != ".json":
        raise OutputError(f"--report {report}: give a .json file name")
    settings = RunSettings(
        model=model,
        render=RenderConfig(render_factor=render_factor, batch_size=batch_size, device=device, backend=backend),
        temporal=TemporalConfig(enabled=not no_temporal, strength=temporal_strength, keyframe_interval=keyframe_interval),
        encode=EncodeConfig(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt),
    )
    # Validate paths, input and output settings before loading a model: a typo fails in milliseconds.
    prepared = prepare_run(input, output, settings.encode, overwrite)
    if report is not None:
        check_side_output(report, "--report", [input, output])
    anchors = AnchorFiles.from_paths(hints=[hints] if hints is not None else [], references=reference or [])
    color_model = load_model(model)
    options = {"anchors": anchors, "overwrite": overwrite, "should_stop": None, "prepared": prepared}

    with _StopFlag() as stop:
        options["should_stop"] = stop
        if show_progress(quiet):
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

                result = colorize_video(input, output, color_model, settings, progress=on_progress, **options)
        else:
            result = colorize_video(input, output, color_model, settings, **options)

    if report is not None:
        text = (result.to_json() + "\n").encode()
        try:
            atomic_write(report, lambda f: f.write(text), overwrite=True)
        except OSError as exc:  # a full disk: OUT is complete, the report could not be written
            raise OutputError(f"--report {report}: cannot be written ({exc.strerror or exc}); {output} is complete") from None
    if not quiet:
        for warning in result.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        err_console.print(
            f"{output}: {result.frames} frames in {result.seconds['wall']:.1f} s ({result.fps:.1f} fps)", soft_wrap=True
        )
