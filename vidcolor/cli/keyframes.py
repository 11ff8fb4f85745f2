"""``vidcolor keyframes IN -o DIR``: one picture per shot, to colour by hand and give back to ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli.common import app, err_console, handle_errors, out_console

HELP = "\n\n".join(
    [
        "Find the shots of the film IN and write the first frame of each shot into DIR as a full-size PNG, coloured "
        "by the model "
        "as a starting point (--grey: left grey), plus keyframes.json (each shot's first and last frame, times and "
        "picture).",
        "Colour a film your way: recolour any of these pictures in an image editor (keep the file names, the size and "
        "the "
        "brightness; change only colour), delete the ones you do not want to impose, then run "
        "`vidcolor run IN OUT --reference DIR`: each picture's colour is carried through its shot.",
        "The first frame is chosen because a reference is carried forward through the whole of its shot, but back "
        "only a "
        "short look-ahead. Shots are found as `vidcolor run` finds them (a jump in the luma histogram, or a frame the "
        "optical flow cannot match to the one before). Frames are counted from 0 in decoding order.",
    ]
)


@app.command("keyframes", help=HELP)
@handle_errors
def keyframes_command(
    input: Path = typer.Argument(..., metavar="IN", help="The film (any video file vidcolor run reads)."),
    output_dir: Path = typer.Option(
        ...,
        "--output-dir",
        "-o",
        metavar="DIR",
        help="Folder for the pictures and keyframes.json (created if missing).",
    ),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="Model that colours the pictures (and whose render size the shots are found at).",
    ),
    render_factor: Optional[int] = typer.Option(
        None, "--render-factor", "-r", help="Model input size = N x 16 pixels; the model's video default when omitted."
    ),
    grey: bool = typer.Option(False, "--grey", help="Write the frames grey instead of coloured by the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", "-y", help="Replace key frames already in DIR."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    from vidcolor.media.probe import probe
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig
    from vidcolor.video.keyframes import extract_keyframes

    probe(input)  # a bad input fails before the model loads
    shots = extract_keyframes(
        input,
        output_dir,
        load_model(model),
        RenderConfig(render_factor=render_factor, device=device),
        grey=grey,
        overwrite=overwrite,
    )
    if not quiet:
        for s in shots:
            out_console.print(
                f"shot {s.shot}: frames {s.start}-{s.end} ({s.start_time:.2f}-{s.end_time:.2f} s) -> {s.file}",
                soft_wrap=True,
            )
        err_console.print(f"{output_dir}: {len(shots)} shot(s), keyframes.json written", soft_wrap=True)
