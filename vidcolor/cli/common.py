"""Shared CLI pieces: the typer app, error mapping, console and progress helpers."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console

from vidcolor.errors import VidcolorError

app = typer.Typer(
    name="vidcolor",
    help="Colorize black-and-white film and photographs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out_console.print(f"vidcolor {version('vidcolor')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            out_console.print("vidcolor (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print vidcolor's version and exit."
    ),
) -> None:
    """Colorize black-and-white film and photographs."""


F = TypeVar("F", bound=Callable[..., Any])


def unwrap(text: str) -> str:
    """Join the source's hard-wrapped lines so the terminal re-wraps each paragraph (paragraphs
    starting with \\b keep their lines, as click's help does)."""
    paragraphs = text.strip("\n").split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)


def show_progress(quiet: bool) -> bool:
    """A progress bar only on an interactive terminal, never in CI or with --quiet."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that every ``with`` block unwinds (the
    video writer deletes its temporary, locks are released) and every handler of Ctrl-C (the
    batch runner's cancel) applies, exactly as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def termination_as_exception() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise ``Terminated`` instead of killing the
    process on the spot (which would leave the hidden temporary output behind)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def handle_errors(func: F) -> F:
    """Turn library errors, Ctrl-C, SIGTERM and SIGHUP into one-line messages and exit codes,
    never a traceback; the exit code of a signal is 128 + its number, as shells report it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with termination_as_exception():
                return func(*args, **kwargs)
        except VidcolorError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except Terminated as exc:
            name = signal.Signals(exc.signum).name
            raise fail(f"stopped by {name}; no partial output was left", 128 + exc.signum) from None
        except KeyboardInterrupt:
            raise fail("interrupted; no partial output was left", 130) from None

    return wrapper  # type: ignore[return-value]
