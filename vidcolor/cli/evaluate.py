"""``vidcolor eval DIR``: score a model on colour photographs against the grey baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vidcolor.cli.common import app, err_console, handle_errors, out_console, show_progress, unwrap
from vidcolor.cli.options import check_report_name
from vidcolor.errors import InputError, OutputError

HELP = """Measure colorization quality on colour photographs.

Each picture under DIR (searched recursively; files may be given too) is desaturated to its BT.601
luma, colorized as `vidcolor image` would, and compared with the original: PSNR (RGB, dB, higher is
better), mean CIEDE2000 (lower is better) and Hasler–Süsstrunk colourfulness (the truth's is shown
for reference). The grey picture (no colour at all) is scored in the same table: the baseline a
model must beat. Unreadable files are reported and skipped."""


def _table(report: EvalReport, per_image: bool) -> Table:  # noqa: F821 - imported late
    table = Table(title=f"{report.model} (render factor {report.render_factor}), {len(report.images)} pictures")
    for name in ("picture", "PSNR", "PSNR grey", "ΔE00", "ΔE00 grey", "colourful.", "truth colourful."):
        table.add_column(name, justify="left" if name == "picture" else "right")

    def cells(d: dict) -> list[str]:
        return [
            f"{d['psnr']:.2f}",
            f"{d['psnr_gray']:.2f}",
            f"{d['ciede2000']:.2f}",
            f"{d['ciede2000_gray']:.2f}",
            f"{d['colourfulness']:.1f}",
            f"{d['colourfulness_truth']:.1f}",
        ]

    if per_image:
        for s in report.images:
            table.add_row(Path(s.path).name, *cells(s.__dict__))
    table.add_row("[bold]mean[/]", *cells(report.mean()), end_section=True)
    return table


# The command's options (kept here so its signature reads as a list of names).
_EVAL_COMMAND_INPUTS = typer.Argument(
    ..., metavar="DIR_OF_COLOUR_IMAGES", help="Folder(s) or files of colour pictures."
)
_EVAL_COMMAND_MODEL = typer.Option("default", "--model", "-m", help="Registered model name, or a .safetensors file.")
_EVAL_COMMAND_RENDER_FACTOR = typer.Option(
    None,
    "--render-factor",
    "-r",
    help="Model input size = N x 16 pixels (4..128); the model's image default when omitted.",
)
_EVAL_COMMAND_LIMIT = typer.Option(
    None, "--limit", "-n", min=1, help="Score only the first N pictures (sorted by path)."
)
_EVAL_COMMAND_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
_EVAL_COMMAND_REPORT = typer.Option(
    None, "--report", metavar="FILE", help="Write the per-picture scores and means to this JSON file."
)
_EVAL_COMMAND_SUMMARY = typer.Option(False, "--summary", help="Only the mean row in the table.")
_EVAL_COMMAND_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar and no table.")
_EVAL_COMMAND_HINT_POINTS = typer.Option(
    0,
    "--hint-points",
    min=0,
    help="Give a hint model N colour points per picture from its truth (random 3x3 render-pixel squares, seeded "
    "by file name).",
)


@app.command("eval", help=unwrap(HELP))
@handle_errors
def eval_command(
    inputs: list[Path] = _EVAL_COMMAND_INPUTS,
    model: str = _EVAL_COMMAND_MODEL,
    render_factor: Optional[int] = _EVAL_COMMAND_RENDER_FACTOR,
    limit: Optional[int] = _EVAL_COMMAND_LIMIT,
    device: str = _EVAL_COMMAND_DEVICE,
    report_file: Optional[Path] = _EVAL_COMMAND_REPORT,
    summary: bool = _EVAL_COMMAND_SUMMARY,
    quiet: bool = _EVAL_COMMAND_QUIET,
    hint_points: int = _EVAL_COMMAND_HINT_POINTS,
) -> None:
    from vidcolor.evaluation.images import evaluate_images
    from vidcolor.media.outfile import atomic_write
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig
    from vidcolor.train.data import list_images

    check_report_name(report_file)
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise InputError(f"not found: {', '.join(missing)}")
    paths = list_images(inputs)
    others = _other_files(inputs, paths)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise InputError(f"no pictures under {', '.join(map(str, inputs))}")
    colour_model = load_model(model)
    with Progress(
        TextColumn("eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not show_progress(quiet),
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=len(paths))
        report = evaluate_images(
            paths,
            colour_model,
            RenderConfig(render_factor=render_factor, device=device, batch_size=1),
            on_image=lambda _: bar.advance(task),
            hint_points=hint_points,
        )
    report.skipped.extend(f"{p}: not a picture (by its name)" for p in others)
    for reason in report.skipped:
        err_console.print(f"[yellow]skipped:[/] {reason}", soft_wrap=True, highlight=False)
    if not report.images:
        raise InputError("none of the pictures could be read")
    if report_file is not None:
        data = {"command": "eval", "spec": model, **report.to_dict()}
        text = json.dumps(data, indent=2).encode()
        try:
            atomic_write(report_file, lambda f: f.write(text), overwrite=True)
        except OutputError as exc:
            raise OutputError(f"--report: {exc}") from None
    if not quiet:
        out_console.print(_table(report, per_image=not summary))


def _other_files(inputs: list[Path], pictures: list[Path]) -> list[Path]:
    """Files under the folders given that are not picture files (hidden ones aside): reported."""
    seen = set(pictures)
    found = []
    for folder in (p for p in inputs if p.is_dir()):
        for path in sorted(folder.rglob("*")):
            if (
                path.is_file()
                and path not in seen
                and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            ):
                found.append(path)
    return found
