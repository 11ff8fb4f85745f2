"""Reading DDColor's published files (weights only, never running code), checking them key by key,
and our safetensors form of them.

The published files (``ddcolor_paper_tiny.pth``, ``ddcolor_paper.pth``, ``ddcolor_modelscope.pth``,
``ddcolor_artistic.pth``) are BasicSR's ``{'params': state_dict}``; a bare state dict and a
safetensors file of the same keys (as the model hub's copies are) are read too. The encoder's
size is read from the file: the stem's width is 96 for tiny, 192 for large.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vidcolor.errors import ModelError, OutputError
from vidcolor.models.ddcolor.network import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPECS,
    DDColorNet,
    build_network,
    expected_shapes,
    spec_for,
)
from vidcolor.models.torch_checkpoints import (
    is_tagged_file,
    load_tagged,
    load_weights_only,
    owned,
    save_tagged,
    state_mismatch,
)
from vidcolor.models.weights import sha256_file

FILE_FORMAT = "ddcolor-generator"
RENDER_FACTOR = 32  # DDColor's default input, 512 (render size = factor × 16)
STEM = "encoder.arch.downsample_layers.0.0.weight"
SINGLE_DECODER = "decoder.color_decoder.transformer_self_attention_layers.0.self_attn.in_proj_weight"
LICENSE = "Apache-2.0 (DDColor, github.com/piddnad/DDColor); the weights' own terms are their publisher's"


def _state_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for wrapper in ("params", "params_ema", "state_dict"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise ModelError(f"{path}: not a model state dict (expected DDColor's {{'params': state_dict}})")
    return dict(obj)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The network's state dict in a DDColor ``.pth`` (loaded with ``weights_only=True``) or in a
    safetensors file of DDColor's keys."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"DDColor weights not found: {path}")
    if path.suffix.lower() == ".safetensors":
        try:
            return _state_of(load_file(str(path)), path)
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"{path}: unreadable safetensors data ({exc})") from exc
    return _state_of(load_weights_only(path), path)


def guess_size(state: dict[str, torch.Tensor]) -> str | None:
    """'tiny' or 'large' from the stem's width; None when the file is no DDColor network."""
    stem = state.get(STEM)
    if stem is None or stem.ndim != 4:
        return None
    return next((size for size, spec in SPECS.items() if spec.dims[0] == stem.shape[0]), None)


def fit_state(state: dict[str, torch.Tensor], source: str) -> tuple[str, dict[str, torch.Tensor]]:
    """(size, state ready to load) for a DDColor state dict; ModelError naming what differs.

    Strict: every key of the network must be there with its shape and nothing else may be; only
    the ImageNet ``mean`` and ``std`` buffers may be absent (they are constants, filled in).
    """
    size = guess_size(state)
    if size is None:
        raise ModelError(
            f"{source}: not a DDColor network (no ConvNeXt stem {STEM} of width "
            f"{' or '.join(str(s.dims[0]) for s in SPECS.values())})"
        )
    if SINGLE_DECODER not in state and any(k.startswith("decoder.color_decoder.") for k in state):
        raise ModelError(
            f"{source}: a DDColor with the single-scale colour decoder; vidcolor reads the multi-scale one "
            "that the four published files use"
        )
    state = dict(state)
    state.setdefault("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
    state.setdefault("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
    parts = state_mismatch(state, expected_shapes(size))
    if parts:
        raise ModelError(
            f"{source}: weights do not fit DDColor {size} ({spec_for(size).description}): {'; '.join(parts)}"
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"{source}: {len(bad)} tensors hold NaN or infinite values ({bad[0]}, ...)")
    return size, {k: owned(v.float() if v.is_floating_point() else v) for k, v in state.items()}


def network_from_state(state: dict[str, torch.Tensor], source: str) -> DDColorNet:
    """Build on the meta device and adopt the checked tensors: no time spent on a random init."""
    size, fitted = fit_state(state, source)
    net = build_network(size, "meta")
    net.load_state_dict(fitted, strict=True, assign=True)
    return net.eval()


def parameter_count(state: dict[str, torch.Tensor]) -> int:
    """Learnable values (batch-norm statistics, spectral-norm vectors and the constants excluded)."""
    skip = ("running_mean", "running_var", "num_batches_tracked", "weight_u", "weight_v")
    return sum(v.numel() for k, v in state.items() if not k.endswith(skip) and k not in ("mean", "std"))


# --------------------------------------------------------------------------- our safetensors form


def is_ddcolor_file(path: str | Path) -> bool:
    """True for a safetensors file written by ``save_ddcolor`` (the import command)."""
    return is_tagged_file(path, FILE_FORMAT)


def save_ddcolor(net: DDColorNet, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``net`` as safetensors with DDColor's key names, atomically; returns the sha256."""
    path = Path(path)
    meta = {
        "format": FILE_FORMAT,
        "encoder_size": net.spec.size,
        "architecture": net.spec.description,
        "default_render_factor": str(RENDER_FACTOR),
        "license": LICENSE,
    }
    meta.update(metadata or {})
    return save_tagged(net, path, meta)


def load_ddcolor_file(path: str | Path, expected_sha256: str | None = None) -> tuple[DDColorNet, dict[str, str]]:
    """A network from a file ``save_ddcolor`` wrote (checked again, key by key)."""
    state, meta = load_tagged(path, FILE_FORMAT, "DDColor", expected_sha256)
    return network_from_state(state, str(path)), meta


@dataclass(frozen=True)
class ImportResult:
    path: Path
    name: str
    size: str
    sha256: str
    parameters: int
    source_sha256: str


def default_name(source: Path) -> str:
    """``ddcolor_paper_tiny.pth`` -> ``ddcolor-paper-tiny``."""
    stem = source.stem.replace("_", "-").lower()
    return stem if stem.startswith("ddcolor") else f"ddcolor-{stem}"


def import_ddcolor(
    source: str | Path, dest: str | Path, name: str | None = None, overwrite: bool = False
) -> ImportResult:
    """Convert a DDColor ``.pth`` into our safetensors form (checked, atomically written)."""
    source, dest = Path(source), Path(dest)
    if dest.suffix != ".safetensors":
        raise OutputError(f"{dest}: the converted file must end in .safetensors")
    if dest.exists() and dest.resolve() == source.resolve():
        raise OutputError(f"{dest}: output would overwrite the input")
    if dest.exists() and not overwrite:
        raise OutputError(f"{dest} exists (use --overwrite to replace it)")
    if not dest.parent.is_dir():
        raise OutputError(f"{dest.parent}: no such directory")
    state = read_checkpoint(source)
    net = network_from_state(state, str(source))
    source_sha = sha256_file(source)
    name = name or default_name(source)
    meta = {"name": name, "source_file": source.name, "source_sha256": source_sha}
    digest = save_ddcolor(net, dest, meta)
    return ImportResult(dest, name, net.spec.size, digest, parameter_count(net.state_dict()), source_sha)
