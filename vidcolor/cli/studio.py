"""``vidcolor studio FILM`` (or ``PHOTOS…``): colour by hand in a web page, the model answering live."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli.common import app, err_console, handle_errors, unwrap

HELP = """Open FILM (or one or more PHOTOS) in a web page on this computer and colour it by hand: paint
colour hints on any frame and see the model follow them at once, give frames reference pictures
(or promote a frame's coloured view to one), see where your colour stops reaching, preview a few
seconds with the temporal stage, and render the result beside the original (FILM-colour.mp4,
PHOTO-colour.png).

Your choices are saved as you go in a folder that `vidcolor run` reads unchanged (FILM.studio/ by
default: `vidcolor run FILM OUT --hints FILM.studio/hints --reference FILM.studio/references`);
open the studio again to go on from them.

The server listens on 127.0.0.1 only, and every request needs the random token in the printed URL.
Ctrl-C stops it (a render still running is cancelled and leaves no partial file).

\b
Examples:
  vidcolor studio film.mp4
  vidcolor studio scans/*.jpg --choices scans/colour-choices
  vidcolor studio film.mp4 --no-browser --port 8765"""


@app.command("studio", help=unwrap(HELP))
@handle_errors
def studio_command(
    inputs: list[Path] = typer.Argument(..., metavar="FILM | PHOTOS...", help="One film, or one or more pictures."),
    choices: Optional[Path] = typer.Option(
        None, "--choices", metavar="DIR", help="Folder for your choices (default: FILM.studio/ beside the film)."
    ),
    model: str = typer.Option("default", "--model", "-m", help="Model (it must take colour hints to paint them)."),
    render_factor: Optional[int] = typer.Option(
        None, "--render-factor", "-r", help="Model input size = N x 16 pixels; the model's default when omitted."
    ),
    colour_strength: float = typer.Option(1.0, "--colour-strength", help="Saturation of the model's colour, 0 to 2."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (another than loopback: a warning)."),
    port: int = typer.Option(0, "--port", help="Port to listen on (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL only; do not open a browser."),
) -> None:
    import secrets
    import webbrowser

    from vidcolor.errors import InputError
    from vidcolor.models.registry import load_model
    from vidcolor.studio.project import Studio, StudioSettings
    from vidcolor.studio.server import LOOPBACK, accepted_hosts, bind, serve, studio_url

    if not 0 <= port <= 65535:
        raise InputError(f"--port must be 0 to 65535, not {port}")
    for path in inputs:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    settings = StudioSettings(render_factor=render_factor, colour_strength=colour_strength)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    port = sock.getsockname()[1]
    studio = Studio(inputs, load_model(model), choices, settings)
    token = secrets.token_urlsafe(24)
    address = studio_url(host, port, token)
    if host not in (LOOPBACK, "localhost", "::1"):
        err_console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach this address and has the URL can use "
            "the studio and write beside your files",
            soft_wrap=True,
        )
    err_console.print(
        f"vidcolor studio: {address}\nchoices: {studio.choices.folder}   (Ctrl-C to stop)", soft_wrap=True
    )
    if not no_browser:
        webbrowser.open(address)
    serve(studio, sock, token, accepted_hosts(host, port))
