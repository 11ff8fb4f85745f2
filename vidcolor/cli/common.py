"""Shared CLI pieces: the typer app, error mapping, console and progress helpers."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
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

F = TypeVar("F", bound=Callable[..., Any])


def show_progress(quiet: bool) -> bool:
    """A progress bar only on an interactive terminal, never in CI or with --quiet."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn library errors (and Ctrl-C) into one-line messages and exit codes, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VidcolorError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; no partial output was left", 130) from None

    return wrapper  # type: ignore[return-value]
