"""Model families, by table (timm's registry is the model): a weight file's ``format`` tag names
its family, and the family says how to build the model and what it can do.

| family   | format tag (file metadata)  | files                                   | hints | features |
| vidcolor | vidcolor-generator          | .safetensors that `vidcolor train` writes | if trained with them | yes |
| deoldify | deoldify-generator          | .safetensors that `models import-deoldify` writes | no | no |
| ddcolor  | ddcolor-generator           | .safetensors that `models import-ddcolor` writes | no | no |
| onnx     | vidcolor-generator-onnx     | .onnx that `vidcolor export onnx` writes  | if exported with them | no |

A publisher's own checkpoint, which has no vidcolor tag, is named by a prefix instead:
``deoldify-artistic:PATH``, ``deoldify-stable:PATH``, ``deoldify-video:PATH``, ``ddcolor:PATH``
(DDColor's encoder size is read from the file).

Loaders are named by module path and imported only when used, so reading the table (and the
registry, which uses it) imports no model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcolor.errors import ModelError


@dataclass(frozen=True)
class ModelFamily:
    name: str
    format: str  # the weight file's "format" metadata tag
    suffix: str  # its files' extension
    loader: str  # "module:function": (path, expected_sha256, entry, temperature) -> ColorModel
    foreign_prefixes: tuple[str, ...] = ()  # "PREFIX:PATH" specs for a publisher's checkpoints
    foreign_loader: str = ""  # "module:function": (prefix, path) -> ColorModel
    hints: str = "no"  # "yes", "no", or "per file" (declared in the file)
    features: bool = False  # matching features for references (vidcolor.matching)

    def load(
        self, path: Path, expected_sha256: str | None = None, entry: Any = None, temperature: float | None = None
    ) -> Any:
        return _function(self.loader)(path, expected_sha256, entry, temperature)

    def load_foreign(self, prefix: str, path: str) -> Any:
        return _function(self.foreign_loader)(prefix, path)


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        "vidcolor",
        "vidcolor-generator",
        ".safetensors",
        "vidcolor.models.loaders:load_vidcolor",
        hints="per file",
        features=True,
    ),
    ModelFamily(
        "deoldify",
        "deoldify-generator",
        ".safetensors",
        "vidcolor.models.loaders:load_deoldify",
        foreign_prefixes=("deoldify-artistic", "deoldify-stable", "deoldify-video"),
        foreign_loader="vidcolor.models.loaders:load_deoldify_checkpoint",
    ),
    ModelFamily(
        "ddcolor",
        "ddcolor-generator",
        ".safetensors",
        "vidcolor.models.loaders:load_ddcolor",
        foreign_prefixes=("ddcolor",),
        foreign_loader="vidcolor.models.loaders:load_ddcolor_checkpoint",
    ),
    ModelFamily("onnx", "vidcolor-generator-onnx", ".onnx", "vidcolor.models.loaders:load_onnx", hints="per file"),
)


def _function(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def family_for_format(tag: str, path: Path) -> ModelFamily:
    for family in FAMILIES:
        if family.format == tag:
            return family
    known = ", ".join(f.format for f in FAMILIES)
    raise ModelError(f"{path}: unknown model format {tag or '(none)'!r} (vidcolor reads {known})")


def family_for_prefix(prefix: str) -> ModelFamily | None:
    """The family whose publisher's checkpoints a ``PREFIX:PATH`` spec names (``ddcolor``,
    ``deoldify-KIND``; an unknown KIND is the family loader's to refuse)."""
    return next(
        (f for f in FAMILIES if f.foreign_loader and (prefix in f.foreign_prefixes or prefix.startswith(f"{f.name}-"))),
        None,
    )


def file_format(path: Path) -> str:
    """The ``format`` tag a weight file declares (safetensors metadata, ONNX metadata)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.suffix.lower() == ".onnx":
        from vidcolor.models.onnx_graph import read_format

        return read_format(path)
    from vidcolor.models.weights import read_metadata

    return read_metadata(path).get("format", "")
