"""Reading a publisher's PyTorch checkpoint without running its code, and saying plainly what in
it does not fit a model (DeOldify's and DDColor's loaders use these)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vidcolor.errors import ModelError
from vidcolor.hashing import sha256_file
from vidcolor.models.weights import read_metadata, write_safetensors


def load_weights_only(path: Path, extra_globals: list[Any] | tuple[Any, ...] = ()) -> object:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only (plus the
    ``extra_globals`` a publisher's format needs); ModelError, in one line, for anything else."""
    try:
        with torch.serialization.safe_globals(list(extra_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        AttributeError,
        ImportError,
        KeyError,
        IndexError,
        TypeError,
        struct.error,
        UnicodeDecodeError,
        OSError,
    ) as exc:
        # A text file that happens to start with a pickle opcode ("hello", "error 404") fails
        # inside the unpickler with whatever that opcode meets: any of these means "not a checkpoint".
        raise ModelError(
            f"{path}: not a PyTorch checkpoint that loads without running code ({refusal_reason(exc)})"
        ) from exc


def refusal_reason(exc: BaseException) -> str:
    """Why torch refused a file, in a few words: the unpickler's own reason, never torch's advice
    to retry with ``weights_only=False`` (which would run whatever code the file carries)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        after = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
        if after:
            return after[0][:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    safe = [
        line
        for line in lines
        if "weights_only" not in line and "trusted source" not in line and "trust the source" not in line
    ]
    # The first sentence: torch's readers append advice ("This is an internal miniz error. ...").
    return (safe[0].split(". ")[0] if safe else type(exc).__name__)[:200]


def _listed(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def state_mismatch(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """What keeps ``state`` from loading strictly into a model of ``shapes``, in a few words per
    kind of difference (missing, unexpected, of wrong shape); empty when it fits."""
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    wrong = sorted(k for k in set(shapes) & set(state) if tuple(state[k].shape) != shapes[k])
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_listed(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_listed(unexpected)})")
    if wrong:
        shown = ", ".join(f"{k} {tuple(state[k].shape)} vs {shapes[k]}" for k in wrong[:2])
        parts.append(f"{len(wrong)} of wrong shape ({shown}{', ...' if len(wrong) > 2 else ''})")
    return parts


def owned(t: torch.Tensor) -> torch.Tensor:
    """Contiguous and 64-byte aligned. Tensors read from safetensors can sit at unaligned offsets
    of one buffer; oneDNN then takes other kernels (slower, and not bit-identical), so copy those."""
    t = t.contiguous()
    return t.clone() if t.data_ptr() % 64 else t


# --------------------------------------------------------------------------- our tagged safetensors form


def is_tagged_file(path: str | Path, file_format: str) -> bool:
    """True for a safetensors file whose metadata declares ``file_format`` (an import command's output)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    try:
        return read_metadata(path).get("format") == file_format
    except ModelError:
        return False


def save_tagged(net: torch.nn.Module, path: str | Path, metadata: dict[str, str]) -> str:
    """Write ``net``'s state as safetensors with ``metadata``, atomically; returns the sha256."""
    return write_safetensors(net.state_dict(), path, metadata)


def load_tagged(
    path: str | Path, file_format: str, what: str, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state, metadata) of a file ``save_tagged`` wrote with ``file_format``; ModelError in one
    line for a missing, foreign (``what``: its import command's family), replaced or damaged file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    meta = read_metadata(path)
    if meta.get("format") != file_format:
        raise ModelError(f"{path}: not a converted {what} file (run `vidcolor models import-{what.lower()}`)")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelError(f"{path}: sha256 does not match the registry (file damaged or replaced)")
    try:
        return load_file(str(path)), meta
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{path}: unreadable safetensors data ({exc})") from exc
