"""Saving and loading generator weights: safetensors with the architecture in its metadata.

Our own files never go through pickle. A file records the generator config, so it rebuilds its
model without any side information, and its sha256 identifies it in the registry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vidcolor.errors import ModelError
from vidcolor.hashing import sha256_file  # noqa: F401  (re-exported: callers import it from here)
from vidcolor.media.outfile import atomic_write
from vidcolor.models.generator import Generator, GeneratorConfig

MAX_CONFIG_CHARS = 64_000  # a real config is a few hundred characters (bin_bias included: ~6 kB)


def save_generator(model: Generator, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``model`` atomically to ``path``; returns the file's sha256."""
    meta = {"format": "vidcolor-generator", "config": json.dumps(model.config.to_dict())}
    meta.update(metadata or {})
    return write_safetensors(model.state_dict(), path, meta)


def write_safetensors(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> str:
    """Write ``state`` as safetensors with ``metadata`` atomically (replacing ``path``); returns
    the file's sha256. The one writer of every weights file vidcolor makes."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    # Serialised in memory and written through atomic_write rather than by safetensors' save_file,
    # which creates its file 0600: a shipped model or an exported backbone would be unreadable to
    # the other users of a shared install.
    payload = save(tensors, metadata=metadata)
    atomic_write(path, lambda f: f.write(payload), overwrite=True)
    return hashlib.sha256(payload).hexdigest()  # the bytes just written: no second read of the file


def read_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from exc


def load_generator(path: str | Path, expected_sha256: str | None = None) -> tuple[Generator, dict[str, str]]:
    """Rebuild a generator from a vidcolor safetensors file (strict key and shape check)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelError(f"{path}: sha256 does not match the registry (file damaged or replaced)")
    meta = read_metadata(path)
    if meta.get("format") != "vidcolor-generator" or "config" not in meta:
        raise ModelError(f"{path}: not a vidcolor generator file (no vidcolor metadata)")
    if len(meta["config"]) > MAX_CONFIG_CHARS:
        raise ModelError(f"{path}: its architecture metadata is implausibly large ({len(meta['config'])} characters)")
    try:
        config = GeneratorConfig.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise ModelError(f"{path}: invalid architecture metadata ({str(exc).splitlines()[0][:120]})") from None
    model = Generator(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: weights cannot be read ({str(exc)[:120]})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ModelError(
            f"{path}: weights do not fit the architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    model.load_state_dict(state)
    model.eval()
    return model, meta


def state_for_training(model: Generator) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
