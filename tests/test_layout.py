"""The code's shape, checked: what the I/O layer may import, how long a function may grow."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vidcolor"
MEDIA_MAY_IMPORT = ("vidcolor.media", "vidcolor.errors", "vidcolor.color", "vidcolor.hashing")


def modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text())


def test_media_imports_nothing_of_the_stages():
    for path, tree in modules(PACKAGE / "media"):
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("vidcolor"):
                    assert name.startswith(MEDIA_MAY_IMPORT), f"{path.name} imports {name}"


def test_functions_stay_short_and_the_run_is_wiring():
    lengths = {}
    for path, tree in modules(PACKAGE):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths[f"{path.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
    long = {k: n for k, n in lengths.items() if n > 80}
    assert not long, long
    assert lengths["video/run.py:colorize_video"] <= 60


def test_no_request_is_matched_by_value():
    for path, _ in modules(PACKAGE):
        assert "torch.equal(" not in path.read_text(), path
