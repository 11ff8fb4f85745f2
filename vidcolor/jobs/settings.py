"""Batch job settings: vidcolor's one run-settings schema (vidcolor.settings.RunSettings) plus what
only a batch has (the films' container, folders of per-film anchors), read from a recipe TOML
(pipelines/batch-default.toml) and overridden by the same command-line options ``run`` takes.

The settings that shape an output are hashed per kind of item (films depend on the temporal
stage and the encoder, pictures do not), so changing ``--crf`` redoes the films and leaves the
photos; what only changes speed (device, batch size, backend, encoder threads) redoes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import tomllib

from vidcolor.errors import InputError, VidcolorError
from vidcolor.settings import RunSettings
from vidcolor.studio.naming import CHOICES_SUFFIX

CONTAINERS = ("mp4", "mkv")
RUN_SECTIONS = ("run", "render", "temporal", "encode")
# Settings that change how fast an output is made, not what it is.
SPEED_ONLY = {"render": ("batch_size", "device", "backend", "dtype"), "encode": ("threads", "queue_frames")}


@dataclass(frozen=True)
class JobSettings:
    run: RunSettings = field(default_factory=RunSettings)
    container: str = "mp4"  # films are written as .mp4 or .mkv; pictures keep their format
    # Folders of anchor folders, one per film, named by the film's output path without its
    # extension (DIR/sub/film/ for DST/sub/film.mp4), read by the anchor naming rule.
    references: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise InputError(f"video container {self.container!r}: use one of {', '.join(CONTAINERS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def override(self, run: dict[str, dict[str, Any]] | None = None, **batch: Any) -> JobSettings:
        """Command-line options win over the recipe; ``None`` means the option was not given."""
        given = {k: v for k, v in batch.items() if v is not None}
        return replace(self, run=self.run.override(run or {}), **given)


def load_recipe(path: str | Path | None) -> JobSettings:
    """Read a batch recipe; ``None`` gives the built-in defaults (the same as batch-default.toml).

    Sections: [run] model; [render], [temporal], [encode] as vidcolor.settings names their fields;
    [batch] container, references, hints."""
    if path is None:
        return JobSettings()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"recipe not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"recipe {path} is not readable TOML: {exc}") from None
    unknown = sorted(set(raw) - set(RUN_SECTIONS) - {"batch"})
    if unknown or not all(isinstance(t, dict) for t in raw.values()):
        raise InputError(
            f"recipe {path}: unknown section [{(unknown or ['?'])[0]}] (known: {', '.join((*RUN_SECTIONS, 'batch'))})"
        )
    batch = dict(raw.get("batch", {}))
    extra = sorted(set(batch) - {"container", "references", "hints"})
    if extra:
        raise InputError(f"recipe {path}: unknown key {extra[0]!r} in [batch]")
    for key in ("references", "hints"):
        if key in batch:
            value = batch[key]
            batch[key] = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else value
    try:
        return JobSettings().override({k: v for k, v in raw.items() if k in RUN_SECTIONS}, **batch)
    except (VidcolorError, TypeError) as exc:
        raise InputError(f"recipe {path}: {exc}") from None


def model_fingerprint(spec: str) -> str:
    """What identifies the model's weights: a registry entry's sha256, or a weight file's own.

    Hashing the weights (not the name) means retraining ``model.safetensors`` in place redoes the job.
    """
    from vidcolor.models.families import family_for_prefix
    from vidcolor.models.registry import find_entry
    from vidcolor.models.weights import sha256_file

    prefix, sep, rest = spec.partition(":")
    foreign = bool(sep) and family_for_prefix(prefix) is not None  # deoldify-video:PATH, ddcolor:PATH
    path = Path(rest if foreign else spec)
    if path.is_file():
        return f"{prefix if foreign else 'file'}:{sha256_file(path)}"
    entry = find_entry(spec)
    return f"{entry.name}:{entry.version}:{entry.sha256}"


def anchor_folders(settings: JobSettings, key: str) -> dict[str, list[Path]]:
    """The film with output ``key``'s anchor folders, by kind ("references", "hints"): under each
    root, ``<key without extension>/``, or the film's studio choices ``<key without extension>.studio/<kind>/``
    (so ``--hints SRC --reference SRC`` reads the choices the studio saved beside each film)."""
    found: dict[str, list[Path]] = {}
    stem = PurePosixPath(key).with_suffix("")
    for kind in ("references", "hints"):
        for root in getattr(settings, kind):
            for folder in (Path(root) / stem, Path(root) / f"{stem}{CHOICES_SUFFIX}" / kind):
                if folder.is_dir():
                    found.setdefault(kind, []).append(folder)
    return found


def folder_digest(folder: Path) -> str:
    """What identifies a folder of anchor pictures: names and contents (a changed picture redoes the film)."""
    from vidcolor.hashing import sha256_file

    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\0")
    return h.hexdigest()


def item_settings_hash(settings: JobSettings, kind: str, model_id: str, key: str) -> str:
    """``settings_hash``, and for a film with anchors, their digests too."""
    base = settings_hash(settings, kind, model_id)
    folders = anchor_folders(settings, key) if kind == "video" else {}
    if not folders:
        return base
    digests = [f"{k}:{folder_digest(f)}" for k, fs in sorted(folders.items()) for f in fs]
    return hashlib.sha256((base + "".join(digests)).encode()).hexdigest()[:16]


def settings_hash(settings: JobSettings, kind: str, model_id: str) -> str:
    """Short hash of what shapes an output of ``kind`` ("video" or "image")."""
    run = asdict(settings.run)
    shaping: dict[str, Any] = {"model": model_id, "render": _without(run["render"], SPEED_ONLY["render"])}
    if kind == "video":
        shaping.update(
            temporal=run["temporal"], encode=_without(run["encode"], SPEED_ONLY["encode"]), container=settings.container
        )
    blob = json.dumps({"kind": kind, **shaping}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _without(table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k not in keys}
