"""``vidcolor image IN... -o DIR``: colorize still pictures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vidcolor.cli.common import app, err_console, fail, handle_errors, out_console, show_progress
from vidcolor.errors import InputError, OutputError

if TYPE_CHECKING:  # the command imports them when it runs: `--help` stays fast (no torch)
    from vidcolor.colorizer import Colorizer
    from vidcolor.stills import ImageResult

# One line per paragraph: rich re-wraps help text to the terminal's width.
HELP = "\n\n".join(
    [
        "Colorize still pictures: JPEG, PNG, TIFF and WebP (recognised by content, not by name).",
        "IN may be files, folders (searched recursively for image files) and glob patterns (quote them, e.g. "
        "'scans/**/*.tif'). "
        "Each output keeps its input's name, format and bit depth under DIR; a folder's pictures keep their layout "
        "below DIR. "
        "Pictures are turned upright from their EXIF orientation, 16-bit PNG/TIFF stay 16-bit and alpha is copied "
        "untouched.",
        "The model sees only the luminance; the output keeps the input's luminance exactly and only adds colour. "
        "A picture that already has colour is recoloured from its luminance: its old colours are discarded.",
        "Colour hints (a model trained with them, e.g. the default vidcolor-lite0-cls-v2; one picture): --hints "
        "HINTS.png, a PNG "
        "of the picture's size, transparent except where you painted colour, and/or --hint X,Y,#RRGGBB points. Only "
        "the "
        "hints' chroma is used; each hint colours the object it is on, up to that object's outline.",
        "Existing outputs are refused unless --overwrite; an input is never overwritten. With several pictures, one "
        "that "
        "cannot be read is reported and the others go on. Exit codes: 0 ok, 1 some pictures failed, 2 bad usage or "
        "input.",
    ]
)


# The command's options (kept here so its signature reads as a list of names).
_IMAGE_COMMAND_INPUTS = typer.Argument(..., metavar="IN", help="Picture files, folders or glob patterns.")
_IMAGE_COMMAND_OUTPUT_DIR = typer.Option(
    ..., "--output-dir", "-o", metavar="DIR", help="Folder for the colorized pictures (created if missing)."
)
_IMAGE_COMMAND_MODEL = typer.Option(
    "default",
    "--model",
    "-m",
    help="Registered model name, 'default', a vidcolor .safetensors file, an exported .onnx file, or "
    "deoldify-KIND:PATH or ddcolor:PATH.",
)
_IMAGE_COMMAND_RENDER_FACTOR = typer.Option(
    None,
    "--render-factor",
    "-r",
    help="Model input size = N x 16 pixels (4..128); the model's image default when omitted. Higher: finer "
    "colour, slower.",
)
_IMAGE_COMMAND_BATCH_SIZE = typer.Option(
    8, "--batch-size", "-b", min=1, help="Pictures of the same render size colorized together."
)
_IMAGE_COMMAND_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
_IMAGE_COMMAND_BACKEND = typer.Option(
    "auto",
    "--backend",
    help="Model backend: auto (fastest measured within tolerance), eager, channels_last, bf16, fp16 (CUDA), "
    "compile, onnx.",
)
_IMAGE_COMMAND_OVERWRITE = typer.Option(False, "--overwrite", "-y", help="Replace existing outputs (never an input).")
_IMAGE_COMMAND_QUIET = typer.Option(
    False, "--quiet", "-q", help="No progress bar and no summary; errors are still printed."
)
_IMAGE_COMMAND_REPORT = typer.Option(
    None, "--report", metavar="FILE.json", help="Write what happened to each picture as JSON."
)
_IMAGE_COMMAND_HINTS_PICTURE = typer.Option(
    None,
    "--hints",
    metavar="HINTS.png",
    help="Colour hints for a single picture: a PNG of its size, transparent except where you painted colour.",
)
_IMAGE_COMMAND_HINT = typer.Option(
    None, "--hint", metavar="X,Y,#RRGGBB", help="One colour point (pixel column, row, hex colour); repeat for more."
)
_IMAGE_COMMAND_DEOLDIFY_POSTPROCESS = typer.Option(
    "native",
    "--postprocess",
    metavar="MODE",
    help="DeOldify and DDColor models only: 'native' finishes 8-bit pictures exactly as their own code does "
    "(DeOldify: its 8-bit output resized back with Pillow, then OpenCV's YUV with the original Y; DDColor: its ab "
    "resized by nearest neighbour beside the original L in OpenCV's Lab); 'vidcolor' composes the network's chroma "
    "with the picture's own luma at full precision.",
)


_IMAGE_COMMAND_COLOUR_STRENGTH = typer.Option(
    1.0,
    "--colour-strength",
    help="Saturation of the model's colour: 0 grey, 1 as predicted, up to 2 (hints are kept as given; a DeOldify "
    "picture is then composed as with --postprocess vidcolor).",
)


@app.command("image", help=HELP)
@handle_errors
def image_command(
    inputs: list[str] = _IMAGE_COMMAND_INPUTS,
    output_dir: Path = _IMAGE_COMMAND_OUTPUT_DIR,
    model: str = _IMAGE_COMMAND_MODEL,
    render_factor: Optional[int] = _IMAGE_COMMAND_RENDER_FACTOR,
    batch_size: int = _IMAGE_COMMAND_BATCH_SIZE,
    device: str = _IMAGE_COMMAND_DEVICE,
    backend: str = _IMAGE_COMMAND_BACKEND,
    overwrite: bool = _IMAGE_COMMAND_OVERWRITE,
    quiet: bool = _IMAGE_COMMAND_QUIET,
    report: Optional[Path] = _IMAGE_COMMAND_REPORT,
    hints_picture: Optional[Path] = _IMAGE_COMMAND_HINTS_PICTURE,
    hint: Optional[list[str]] = _IMAGE_COMMAND_HINT,
    deoldify_postprocess: str = _IMAGE_COMMAND_DEOLDIFY_POSTPROCESS,
    colour_strength: float = _IMAGE_COMMAND_COLOUR_STRENGTH,
) -> None:
    from vidcolor.colorizer import Colorizer
    from vidcolor.hints import HintSource, parse_hint
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig
    from vidcolor.stills import collect_images, colorize_image_file, colorize_images, plan_outputs

    hints = HintSource(points=tuple(parse_hint(h) for h in hint or ()), picture=hints_picture)
    pairs = collect_images(inputs, exclude=[output_dir])
    if hints and len(pairs) != 1:
        raise InputError(f"--hints and --hint guide one picture; {len(pairs)} were given")
    jobs = plan_outputs(pairs, output_dir, overwrite)
    colour_model = load_model(model)
    colorizer = Colorizer(
        colour_model,
        RenderConfig(
            render_factor=render_factor,
            batch_size=batch_size,
            device=device,
            backend=backend,
            deoldify_postprocess=deoldify_postprocess,
            colour_strength=colour_strength,
        ),
        video=False,
    )

    results: list[ImageResult] = []
    if len(jobs) == 1:
        # A single picture: a bad input is a usage error (exit 2, one line), not a failed job.
        results.append(colorize_image_file(jobs[0][0], jobs[0][1], colorizer, overwrite, hints))
    else:
        columns = (TextColumn("images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err_console, disable=not show_progress(quiet), transient=True) as bar:
            task = bar.add_task("images", total=len(jobs))
            for result in colorize_images(jobs, colorizer, overwrite):
                results.append(result)
                if not result.ok:
                    bar.console.print(f"[bold red]failed:[/] {result.error}", soft_wrap=True, highlight=False)
                bar.advance(task)

    failed = [r for r in results if not r.ok]
    if report is not None:
        _write_report(report, model, colorizer, results)
    if not quiet:
        out_console.print(f"{len(results) - len(failed)} of {len(results)} pictures colorized into {output_dir}")
    if failed:
        raise fail(f"{len(failed)} of {len(results)} pictures failed", 1)


def _write_report(path: Path, model: str, colorizer: Colorizer, results: list[ImageResult]) -> None:
    from vidcolor.media.outfile import atomic_write

    info = colorizer.model.info
    data = {
        "command": "image",
        "model": {"spec": model, "name": info.name, "version": info.version, "sha256": info.sha256},
        "render_factor": colorizer.render_factor,
        "device": str(colorizer.device),
        "succeeded": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "images": [r.to_dict() for r in results],
    }
    text = json.dumps(data, indent=2).encode()
    try:
        atomic_write(path, lambda f: f.write(text), overwrite=True)
    except OutputError as exc:
        raise OutputError(f"report: {exc}") from None
