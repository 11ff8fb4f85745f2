"""Model registry: a name resolves to an architecture, its weights and metadata (timm's idea).

Shipped models are listed in ``vidcolor/weights/registry.json`` (name, file, version, sha256,
default render factors, card). A ``--model`` value may be:
- a registry name (``default`` is an alias of the shipped default model);
- a path to a vidcolor ``.safetensors`` file, or to a ``.onnx`` file from ``vidcolor export onnx``;
- ``deoldify-artistic:PATH``, ``deoldify-stable:PATH`` or ``deoldify-video:PATH``: a DeOldify
  checkpoint loaded directly (see vidcolor.models.deoldify).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vidcolor.errors import ModelError
from vidcolor.models.base import ColorModel, GeneratorModel, ModelInfo
from vidcolor.models.weights import load_generator, sha256_file

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


def _is_deoldify_file(path: Path) -> bool:
    """A DeOldify generator converted by `vidcolor models import-deoldify` (metadata format
    "deoldify-generator"); it is built by vidcolor.models.deoldify, not by load_generator."""
    from vidcolor.models.deoldify import is_deoldify_file

    return is_deoldify_file(path)


def load_model(spec: str = DEFAULT_ALIAS, temperature: float | None = None) -> ColorModel:
    """Resolve a ``--model`` value to a ready (eval-mode, CPU) ColorModel."""
    if spec.startswith("deoldify-"):
        kind, sep, path = spec.partition(":")
        if sep and path:
            from vidcolor.models.deoldify import load_deoldify_model

            return load_deoldify_model(kind.removeprefix("deoldify-"), path)
        # Without ":PATH" it may still name a registered (converted) DeOldify model.
        if not any(e.name == spec for e in read_registry()):
            raise ModelError(f"{spec!r}: write deoldify-KIND:PATH (KIND artistic, stable or video)")
    path = Path(spec)
    if spec.lower().endswith(".onnx"):  # written by `vidcolor export onnx`; runs on ONNX Runtime
        if temperature is not None:
            raise ModelError(f"{spec}: an ONNX model's temperature is fixed when it is exported")
        from vidcolor.models.onnx_graph import load_onnx_model

        return load_onnx_model(spec)
    if spec.endswith(".safetensors") or path.is_file():
        if _is_deoldify_file(path):
            from vidcolor.models.deoldify import load_converted_model

            return load_converted_model(path)
        generator, meta = load_generator(path)
        info = ModelInfo(name=meta.get("name", path.stem), version=meta.get("version", ""), sha256=sha256_file(path), takes_hints=generator.config.hints)
        return GeneratorModel(generator, info, temperature)
    entry = find_entry(spec)
    if _is_deoldify_file(entry.path):
        from vidcolor.models.deoldify import load_converted_model

        return load_converted_model(entry.path, expected_sha256=entry.sha256, name=entry.name, version=entry.version)
    generator, _ = load_generator(entry.path, expected_sha256=entry.sha256)
    info = ModelInfo(
        name=entry.name,
        version=entry.version,
        sha256=entry.sha256,
        default_render_factor=entry.default_render_factor,
        default_render_factor_video=entry.default_render_factor_video,
        takes_hints=generator.config.hints,
    )
    return GeneratorModel(generator, info, temperature if temperature is not None else entry.temperature)
