"""The loaders the model family table names (vidcolor.models.families): a weight file (and its
registry entry, when it has one) -> a ready ColorModel with its capabilities declared."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vidcolor.errors import ModelError
from vidcolor.models.base import ColorModel, GeneratorModel, ModelInfo
from vidcolor.models.weights import load_generator, sha256_file


def _no_temperature(path: Path, temperature: float | None) -> None:
    if temperature is not None:
        raise ModelError(f"{path}: this model's decoding temperature cannot be changed")


def load_vidcolor(path: Path, expected_sha256: str | None, entry: Any, temperature: float | None) -> ColorModel:
    """Our generator: a file `vidcolor train` wrote (registered or not)."""
    generator, meta = load_generator(path, expected_sha256=expected_sha256)
    features = {"takes_hints": generator.config.hints, "describes": True}
    if entry is None:
        info = ModelInfo(
            name=meta.get("name", path.stem), version=meta.get("version", ""), sha256=sha256_file(path), **features
        )
        return GeneratorModel(generator, info, temperature)
    info = ModelInfo(
        name=entry.name,
        version=entry.version,
        sha256=entry.sha256,
        default_render_factor=entry.default_render_factor,
        default_render_factor_video=entry.default_render_factor_video,
        **features,
    )
    return GeneratorModel(generator, info, temperature if temperature is not None else entry.temperature)


def _converted(load: Any, path: Path, expected_sha256: str | None, entry: Any, temperature: float | None) -> ColorModel:
    """A publisher's network converted by an import command (``load``: its family's
    ``load_converted_model``), named and checked by its registry entry when it has one."""
    _no_temperature(path, temperature)
    if entry is None:
        return load(path, expected_sha256)
    return load(path, expected_sha256=entry.sha256, name=entry.name, version=entry.version)


def load_deoldify(path: Path, expected_sha256: str | None, entry: Any, temperature: float | None) -> ColorModel:
    """A DeOldify generator converted by `vidcolor models import-deoldify`."""
    from vidcolor.models.deoldify import load_converted_model

    return _converted(load_converted_model, path, expected_sha256, entry, temperature)


def load_deoldify_checkpoint(prefix: str, path: str) -> ColorModel:
    """``deoldify-KIND:PATH``: one of DeOldify's own checkpoints (or a converted file)."""
    from vidcolor.models.deoldify import load_deoldify_model

    return load_deoldify_model(prefix.removeprefix("deoldify-"), path)


def load_ddcolor(path: Path, expected_sha256: str | None, entry: Any, temperature: float | None) -> ColorModel:
    """A DDColor network converted by `vidcolor models import-ddcolor`."""
    from vidcolor.models.ddcolor import load_converted_model

    return _converted(load_converted_model, path, expected_sha256, entry, temperature)


def load_ddcolor_checkpoint(prefix: str, path: str) -> ColorModel:
    """``ddcolor:PATH``: one of DDColor's own files (or a converted one); the size is in the file."""
    from vidcolor.models.ddcolor import load_ddcolor_model

    if prefix != "ddcolor":
        raise ModelError(f"{prefix}:{path}: write ddcolor:PATH (the encoder's size is read from the file)")
    return load_ddcolor_model(path)


def load_onnx(path: Path, expected_sha256: str | None, entry: Any, temperature: float | None) -> ColorModel:
    """A graph `vidcolor export onnx` wrote; it runs on ONNX Runtime only."""
    from vidcolor.models.onnx_graph import load_onnx_model

    if temperature is not None:
        raise ModelError(f"{path}: an ONNX model's temperature is fixed when it is exported")
    model = load_onnx_model(str(path))
    if expected_sha256 and model.info.sha256 != expected_sha256:
        raise ModelError(f"{path}: sha256 does not match the registry (file damaged or replaced)")
    if entry is not None:
        model.info = replace(model.info, name=entry.name, version=entry.version)
    return model
