"""``vidcolor eval-video PRED``: temporal consistency (E_warp) and, with a colour original, quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vidcolor.cli.common import app, err_console, handle_errors, out_console, show_progress
from vidcolor.cli.options import check_report_name

HELP = (
    "Score a colorized video's temporal consistency, and its quality against a colour original."
    "\n\n"
    "E_warp (Lai et al. 2018): optical flow between consecutive frames of the INPUT's luma (--input, "
    "the B&W film that was colorized; PRED's own luma when omitted), pixels failing the "
    "forward–backward check or on motion boundaries left out, mean squared RGB difference (values in "
    "[0,1], summed over channels) between frame t and frame t+1 warped onto t, averaged over pairs. "
    'Lower is steadier. "colour E_warp" scores only the colour added to the luma (RGB minus luma): '
    'the part a colorizer controls; "chroma E_warp" scores the BT.601 Cb and Cr planes alone. CDC '
    "(colour-distribution consistency, Liu et al. 2021): Jensen–Shannon divergence of each RGB "
    "channel's 256-bin histogram between frames t and t+1, t+2, t+4, averaged; no flow, it sees "
    "colour that drifts or pumps. With --truth (the colour original), per-frame mean PSNR (dB) and "
    "Hasler–Süsstrunk colourfulness of both are shown, and the truth's own E_warp and CDC (the "
    "steadiness of real colour film, for scale). Videos must have the same frame count and size."
)


@app.command("eval-video", help=HELP)
@handle_errors
def eval_video_command(
    pred: Path = typer.Argument(..., metavar="PRED", help="The colorized video to score."),
    truth: Optional[Path] = typer.Option(
        None, "--truth", metavar="COLOUR_VIDEO", help="The colour original: adds PSNR and its colourfulness."
    ),
    input_: Optional[Path] = typer.Option(
        None, "--input", metavar="GRAY_VIDEO", help="The B&W input PRED was made from: flow is computed on its luma."
    ),
    report: Optional[Path] = typer.Option(
        None, "--report", metavar="FILE", help="Also write the scores to this JSON file (as `run --report` does)."
    ),
) -> None:
    from vidcolor.evaluation.video import score_video
    from vidcolor.media.outfile import atomic_write

    check_report_name(report)
    columns = (TextColumn("eval-video"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not show_progress(False), transient=True) as bar:
        task = bar.add_task("frames", total=_frame_count(pred))
        result = score_video(pred, truth, input_, on_frame=lambda n: bar.update(task, completed=n))
    if report is not None:
        text = (json.dumps(result, indent=2) + "\n").encode()
        atomic_write(report, lambda f: f.write(text), overwrite=True)
    table = Table(title=f"{pred.name}: {result['frames']} frames, flow from {result['flow_from']} luma")
    table.add_column("metric")
    table.add_column("PRED", justify="right")
    own = result.get("truth_scores")
    if own is not None:
        table.add_column("truth's own", justify="right")

    def fmt(v: float | None, spec: str) -> str:
        return "n/a (one frame)" if v is None else format(v, spec)

    for key, label in (
        ("ewarp", "E_warp (lower is steadier)"),
        ("ewarp_colour", "colour E_warp"),
        ("ewarp_chroma", "chroma E_warp"),
        ("cdc", "CDC (lower is steadier)"),
    ):
        row = [label, fmt(result[key], ".6f")]
        if own is not None:
            row.append(fmt(own[key], ".6f"))
        table.add_row(*row)
    if own is not None:
        table.add_row("colourfulness", f"{result['colourfulness']:.1f}", f"{result['colourfulness_truth']:.1f}")
        table.add_row("PSNR vs truth (dB)", f"{result['psnr']:.2f}", "")
    else:
        table.add_row("colourfulness", f"{result['colourfulness']:.1f}")
    out_console.print(table)


def _frame_count(path: Path) -> int | None:
    """Frames the container announces (for the progress bar), or None."""
    from vidcolor.errors import VidcolorError
    from vidcolor.media.probe import probe

    try:
        return probe(path).video.estimated_frames
    except VidcolorError:
        return None  # score_video reports the file's problem itself
