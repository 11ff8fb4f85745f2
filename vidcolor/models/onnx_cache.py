"""ONNX graphs of our generators kept on disk between runs, so a run starts without the export.

Building the graph (vidcolor.models.onnx_graph.onnx_bytes) takes ~1.5 s of a 2-core CPU at every
start; read back it takes milliseconds. A graph is stored under a key made of everything it is
built from: the weights themselves (not the file's name: weights changed in memory, as in
training, get their own), the generator's configuration (decoding settings live there), the
temperature, the opset, the torch version that traced it and ``GRAPH_VERSION`` (raised whenever
the code that builds the graph changes what it builds).

The folder is ``$VIDCOLOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/vidcolor``, else ``~/.cache/vidcolor``
(the weights' own folder may be read-only: an installed package). The cache only ever saves
time: an unreadable or unwritable folder, or a damaged file, means the graph is built again.
Files appear atomically (a unique temporary name, then a rename), so two runs starting at once
cannot read half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

GRAPH_VERSION = 2  # 2: annealed mean without a channel soft-max (ab_bins.annealed_mean)


def cache_dir() -> Path:
    explicit = os.environ.get("VIDCOLOR_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "vidcolor"


def graph_key(generator: torch.nn.Module, temperature: float | None, opset: int) -> str:
    """A digest of everything the graph is built from (see the module docstring)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in generator.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(repr(getattr(generator, "config", None)).encode())
    digest.update(repr((temperature, opset, torch.__version__, GRAPH_VERSION)).encode())
    return digest.hexdigest()


def _path(key: str) -> Path:
    return cache_dir() / "onnx" / f"{key}.onnx"


def read_graph(key: str) -> bytes | None:
    try:
        return _path(key).read_bytes()
    except OSError:
        return None


def write_graph(key: str, graph: bytes) -> None:
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError:
        return  # no writable cache: the next run builds the graph again
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(graph)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def forget_graph(key: str) -> None:
    """Remove a stored graph that could not be loaded (it is rebuilt and stored again)."""
    try:
        _path(key).unlink(missing_ok=True)
    except OSError:
        pass
