"""Batch job settings: a recipe TOML (pipelines/batch-default.toml) overridden by CLI options.

The settings that shape an output are hashed per kind of item (videos depend on the codec and the
temporal stage, images do not), so changing ``--crf`` redoes the videos and leaves the photos.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

import tomllib

from vidcolor.errors import InputError

CONTAINERS = ("mp4", "mkv")


@dataclass(frozen=True)
class JobSettings:
    model: str = "default"
    render_factor: int | None = None  # None: the model's default (video and image defaults differ)
    device: str = "auto"
    batch_size: int = 8
    container: str = "mp4"  # videos are written as .mp4 or .mkv; images keep their format
    codec: str = "auto"  # auto: libx264 (the pipeline's choice for .mp4/.mkv); or any ffmpeg encoder
    crf: int = 18
    preset: str = "medium"
    temporal: bool = True
    # A folder of reference-frame folders, one per film, named by the film's output path without
    # its extension (DIR/sub/film/ for DST/sub/film.mp4); see vidcolor.references.
    references: str | None = None

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise InputError(f"video container {self.container!r}: use one of {', '.join(CONTAINERS)}")
        if self.render_factor is not None and not 4 <= self.render_factor <= 128:
            raise InputError(f"render factor {self.render_factor} is out of range (4..128)")
        if not 0 <= self.crf <= 63:
            raise InputError(f"crf {self.crf} is out of range (0..63)")
        if self.batch_size < 1:
            raise InputError("batch_size must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Recipe sections and the settings fields each may set; a flat layout is easier to override, a
# sectioned file easier to read.
SECTIONS: dict[str, tuple[str, ...]] = {
    "model": ("model", "render_factor", "device", "batch_size"),
    "video": ("container", "codec", "crf", "preset", "temporal", "references"),
}


def load_recipe(path: str | Path | None) -> JobSettings:
    """Read a batch recipe; ``None`` gives the built-in defaults (the same as batch-default.toml)."""
    if path is None:
        return JobSettings()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"recipe not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"recipe {path} is not readable TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise InputError(f"recipe {path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        for key, value in table.items():
            if key not in SECTIONS[section]:
                raise InputError(f"recipe {path}: unknown key {key!r} in [{section}]")
            values[key] = value
    if values.get("render_factor") == 0:  # TOML has no null: 0 means the model's default
        values["render_factor"] = None
    types = {f.name: f.type for f in fields(JobSettings)}
    for key, value in values.items():
        expected = {"int": int, "int | None": int, "str": str, "str | None": str, "bool": bool}[str(types[key])]
        if value is None and str(types[key]).endswith("| None"):
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InputError(f"recipe {path}: {key} must be {expected.__name__}, not {value!r}")
    return JobSettings(**values)


def with_overrides(settings: JobSettings, **overrides: Any) -> JobSettings:
    """CLI options win over the recipe; ``None`` means the option was not given."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **given)


def model_fingerprint(spec: str) -> str:
    """What identifies the model's weights: a registry entry's sha256, or a weight file's own.

    Hashing the weights (not the name) means retraining ``model.safetensors`` in place redoes the job.
    """
    from vidcolor.models.registry import find_entry
    from vidcolor.models.weights import sha256_file

    path_part = spec.partition(":")[2] if spec.startswith("deoldify-") else spec
    path = Path(path_part)
    if path.is_file():
        return f"{spec.partition(':')[0] if spec.startswith('deoldify-') else 'file'}:{sha256_file(path)}"
    entry = find_entry(spec)
    return f"{entry.name}:{entry.version}:{entry.sha256}"


def references_for(settings: JobSettings, key: str) -> Path | None:
    """The reference-frame folder of the film with output ``key``, if the job has one for it."""
    if settings.references is None:
        return None
    folder = Path(settings.references) / PurePosixPath(key).with_suffix("")
    return folder if folder.is_dir() else None


def references_digest(folder: Path) -> str:
    """What identifies a film's references: their names and contents (a changed picture redoes the film)."""
    from vidcolor.hashing import sha256_file

    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\0")
    return h.hexdigest()


def item_settings_hash(settings: JobSettings, kind: str, model_id: str, key: str) -> str:
    """``settings_hash``, and for a film with references, their digest too."""
    base = settings_hash(settings, kind, model_id)
    folder = references_for(settings, key) if kind == "video" else None
    if folder is None:
        return base
    return hashlib.sha256((base + references_digest(folder)).encode()).hexdigest()[:16]


def settings_hash(settings: JobSettings, kind: str, model_id: str) -> str:
    """Short hash of what shapes an output of ``kind`` ("video" or "image")."""
    shared = {"model": model_id, "render_factor": settings.render_factor}
    if kind == "video":
        shared.update(
            container=settings.container,
            codec=settings.codec,
            crf=settings.crf,
            preset=settings.preset,
            temporal=settings.temporal,
        )
    blob = json.dumps({"kind": kind, **shared}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
