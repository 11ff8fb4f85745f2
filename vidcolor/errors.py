"""Typed errors raised by the library; the CLI maps them to one-line messages and exit codes."""

from __future__ import annotations


class VidcolorError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class InputError(VidcolorError):
    """The user's input (file, option, recipe) is unusable: exit code 2."""

    exit_code = 2


class OutputError(VidcolorError):
    """The output cannot be written where asked (exists, same as input, bad extension): exit 2."""

    exit_code = 2


class EncodeError(VidcolorError):
    """Encoding or muxing failed while writing a result."""

    exit_code = 1


class ModelError(VidcolorError):
    """A model name, weight file or checkpoint cannot be resolved or does not match: exit 2."""

    exit_code = 2
