"""``vidcolor eval-video PRED``: temporal consistency (E_warp) and, with a colour original, quality."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Optional

import av
import numpy as np
import torch
import typer
from rich.table import Table

from vidcolor.cli.common import app, handle_errors, out_console
from vidcolor.errors import InputError

HELP = (
    "Score a colorized video's temporal consistency, and its quality against a colour original."
    "\n\n"
    "E_warp (Lai et al. 2018): optical flow between consecutive frames of the INPUT's luma (--input, "
    "the B&W film that was colorized; PRED's own luma when omitted), pixels failing the "
    'forward–backward check or on motion boundaries left out, mean squared RGB difference (values in '
    '[0,1], summed over channels) between frame t and frame t+1 warped onto t, averaged over pairs. '
    'Lower is steadier. "colour E_warp" scores only the colour added to the luma (RGB minus luma): '
    'the part a colorizer controls. With --truth (the colour original), per-frame mean PSNR (dB) and '
    'Hasler–Süsstrunk colourfulness of both are shown. Videos must have the same frame count and '
    'size.'
)


def read_rgb(path: Path, role: str) -> Iterator[np.ndarray]:
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


def score_video(pred: Path, truth: Path | None = None, input_: Path | None = None) -> dict:
    """Stream the videos together (two frames per video in memory) and return the scores."""
    from vidcolor.color import rgb_to_luma
    from vidcolor.metrics import WarpError, colourfulness, psnr

    ewarp, ewarp_colour = WarpError(), WarpError(colour_only=True)
    psnrs: list[float] = []
    colourful_pred: list[float] = []
    colourful_truth: list[float] = []
    streams = [read_rgb(pred, "PRED")]
    streams.append(read_rgb(truth, "--truth") if truth else iter(()))
    streams.append(read_rgb(input_, "--input") if input_ else iter(()))
    frames = 0
    for p, t, g in zip_longest(*streams):
        if p is None or (truth and t is None) or (input_ and g is None):
            counts = f"PRED ended at frame {frames}" if p is None else f"PRED has more than {frames} frames"
            raise InputError(f"the videos differ in length ({counts}); they must have the same frames")
        for other, role in ((t, "--truth"), (g, "--input")):
            if other is not None and other.shape != p.shape:
                raise InputError(f"{role} is {other.shape[1]}x{other.shape[0]}, PRED {p.shape[1]}x{p.shape[0]}: sizes must match")
        rgb = torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255.0
        luma = None if g is None else rgb_to_luma(torch.from_numpy(g).permute(2, 0, 1)[None].float() / 255.0)
        ewarp.update(rgb, luma)
        ewarp_colour.update(rgb, luma)
        colourful_pred.append(float(colourfulness(rgb)))
        if t is not None:
            truth_rgb = torch.from_numpy(t).permute(2, 0, 1)[None].float() / 255.0
            psnrs.append(float(psnr(rgb, truth_rgb)))
            colourful_truth.append(float(colourfulness(truth_rgb)))
        frames += 1
    if frames == 0:
        raise InputError(f"PRED {pred}: no video frames decoded")
    result: dict = {
        "pred": str(pred),
        "frames": frames,
        "flow_from": "input" if input_ else "pred",
        "ewarp": ewarp.value if ewarp.pairs else None,
        "ewarp_colour": ewarp_colour.value if ewarp_colour.pairs else None,
        "colourfulness": float(np.mean(colourful_pred)),
    }
    if truth:
        result.update(truth=str(truth), psnr=float(np.mean(psnrs)), colourfulness_truth=float(np.mean(colourful_truth)))
    return result


@app.command("eval-video", help=HELP)
@handle_errors
def eval_video_command(
    pred: Path = typer.Argument(..., metavar="PRED", help="The colorized video to score."),
    truth: Optional[Path] = typer.Option(None, "--truth", metavar="COLOUR_VIDEO", help="The colour original: adds PSNR and its colourfulness."),
    input_: Optional[Path] = typer.Option(None, "--input", metavar="GRAY_VIDEO", help="The B&W input PRED was made from: flow is computed on its luma."),
    json_out: bool = typer.Option(False, "--json", help="Print the scores as JSON instead of a table."),
) -> None:
    result = score_video(pred, truth, input_)
    if json_out:
        out_console.print_json(json.dumps(result))
        return
    table = Table(title=f"{pred.name}: {result['frames']} frames, flow from {result['flow_from']} luma")
    table.add_column("metric")
    table.add_column("value", justify="right")

    def fmt(v: float | None, spec: str) -> str:
        return "n/a (one frame)" if v is None else format(v, spec)

    table.add_row("E_warp (lower is steadier)", fmt(result["ewarp"], ".6f"))
    table.add_row("colour E_warp", fmt(result["ewarp_colour"], ".6f"))
    table.add_row("colourfulness", f"{result['colourfulness']:.1f}")
    if truth:
        table.add_row("PSNR vs truth (dB)", f"{result['psnr']:.2f}")
        table.add_row("colourfulness of truth", f"{result['colourfulness_truth']:.1f}")
    out_console.print(table)
