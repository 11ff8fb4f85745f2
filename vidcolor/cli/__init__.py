"""The ``vidcolor`` command. Thin: parse, validate, call the library, map errors to exit codes.

Each command group lives in its own module and registers itself on ``app``; the library never
prints or exits, the CLI does. Exit codes: 0 ok, 1 a job failed, 2 bad usage or input.
"""

from __future__ import annotations

import importlib

from vidcolor.cli.common import app

# Command modules, each adding its commands to ``app`` on import. Every one must import: a broken
# or missing module is a packaging bug to see at once, not a command that silently disappears.
COMMAND_MODULES = (
    "run",
    "keyframes",
    "image",
    "batch",
    "train",
    "evaluate",
    "eval_video",
    "models",
    "export",
    "studio",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"vidcolor.cli.{_name}")

__all__ = ["app"]
