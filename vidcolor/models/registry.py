"""Model registry: a name resolves to an architecture, its weights and metadata (timm's idea).

Shipped models are listed in ``vidcolor/weights/registry.json`` (name, file, version, sha256,
default render factors, card). A ``--model`` value may be:
- a registry name (``default`` is an alias of the shipped default model);
- a path to a weight file of any family (vidcolor.models.families: its format tag decides);
- ``FAMILY-KIND:PATH`` for a publisher's own checkpoint (``deoldify-video:PATH``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vidcolor.errors import ModelError
from vidcolor.models.base import ColorModel
from vidcolor.models.families import family_for_format, family_for_prefix, file_format

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
REGISTRY_FILE = WEIGHTS_DIR / "registry.json"
DEFAULT_ALIAS = "default"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    file: str
    version: str
    sha256: str
    description: str = ""
    card: str = ""
    default_render_factor: int = 16
    default_render_factor_video: int = 16
    temperature: float | None = None
    default: bool = False

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def read_registry(path: Path | None = None) -> list[RegistryEntry]:
    path = REGISTRY_FILE if path is None else path  # looked up at call time (tests point it elsewhere)
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        return [RegistryEntry(**entry) for entry in raw["models"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model registry {path} is damaged: {exc}") from exc


def find_entry(name: str, entries: list[RegistryEntry] | None = None) -> RegistryEntry:
    entries = read_registry() if entries is None else entries
    if name == DEFAULT_ALIAS:
        defaults = [e for e in entries if e.default]
        if not defaults:
            raise ModelError("no default model is registered (vidcolor/weights/registry.json)")
        return defaults[0]
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise ModelError(f"unknown model {name!r} (registered: {known}; or give a .safetensors path)")


def load_model(spec: str = DEFAULT_ALIAS, temperature: float | None = None) -> ColorModel:
    """Resolve a ``--model`` value to a ready (eval-mode, CPU) ColorModel: a family prefix and a
    path (``deoldify-video:FILE``), a weight file, or a registered name; the file's format tag
    picks its family (vidcolor.models.families)."""
    prefix, sep, rest = spec.partition(":")
    family = family_for_prefix(prefix) if sep else None
    if family is not None and rest:
        return family.load_foreign(prefix, rest)
    if not sep and family_for_prefix(spec) is not None and not any(e.name == spec for e in read_registry()):
        raise ModelError(f"{spec!r}: write {spec}:PATH (a checkpoint of that kind)")
    path = Path(spec)
    if spec.lower().endswith((".onnx", ".safetensors")) or path.is_file():
        return family_for_format(file_format(path), path).load(path, None, None, temperature)
    entry = find_entry(spec)
    return family_for_format(file_format(entry.path), entry.path).load(entry.path, entry.sha256, entry, temperature)
