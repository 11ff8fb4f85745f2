"""Reading DeOldify's .pth files (weights only, never running code) and our safetensors form of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcolor.errors import ModelError, OutputError
from vidcolor.models.deoldify.unet import (
    FILE_FORMAT,
    RENDER_FACTOR,
    RENDER_FACTOR_VIDEO,
    SPECS,
    DeOldifyUnet,
    build_generator,
    expected_shapes,
    parameter_count,
    spec_for,
)
from vidcolor.models.torch_checkpoints import (  # noqa: F401  (refusal_reason: re-exported)
    is_tagged_file,
    load_tagged,
    load_weights_only,
    owned,
    refusal_reason,
    save_tagged,
    state_mismatch,
)
from vidcolor.models.weights import sha256_file

# --------------------------------------------------------------------------- reading DeOldify files


# fastai stores optimiser hyper-parameters that can be NumPy scalars, and its discriminative
# learning rates as Python ``slice`` objects; these globals only rebuild scalars, dtypes and
# slices (no code runs), so exactly they are allowed on top of torch's weights-only set.
def fastai_safe_globals() -> list:
    allowed: list = [np.dtype, slice]
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed the package
    scalar_fn = core.multiarray.scalar
    allowed += [(scalar_fn, "numpy.core.multiarray.scalar"), (scalar_fn, "numpy._core.multiarray.scalar")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, name)
            for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType")
            if hasattr(dtypes, name)
        ]
    return allowed


def _torch_load(path: Path) -> object:
    return load_weights_only(path, fastai_safe_globals())


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The generator state dict in a DeOldify ``.pth``: what fastai's ``learn.save`` wrote, either
    ``{'model': state, 'opt': optimiser}`` or the bare state. Loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"DeOldify weights not found: {path}")
    obj = _torch_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise ModelError(f"{path}: not a model state dict (expected DeOldify's learn.save output)")
    return dict(obj)


def _legacy_spectral_v(weight_orig: torch.Tensor, weight_u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A v vector for a spectral-norm state saved by PyTorch before 1.1 (W kept, v not).

    Solves W_orig·x = u in the least-squares sense and scales x so that uᵀ·W_orig·v equals the
    sigma implied by the stored normalised weight, as PyTorch's own upgrade hook does.
    """
    mat = weight_orig.double().flatten(1)
    sigma = (weight_orig.double() / weight.double()).mean()
    u = weight_u.double()
    v = torch.linalg.lstsq(mat, u.unsqueeze(1)).solution.squeeze(1)
    v = v * (sigma / torch.dot(u, mat @ v))
    return v.to(weight_orig.dtype)


def fit_state(state: dict[str, torch.Tensor], kind: str, source: str) -> dict[str, torch.Tensor]:
    """Check ``state`` against the generator of ``kind`` and return it ready to load.

    Strict: every key of the model must be there with its shape and nothing else may be, except
    two things older PyTorch versions wrote differently: BatchNorm's ``num_batches_tracked``
    (absent before 0.4.1, filled with 0) and pre-1.1 spectral norm (``weight`` instead of
    ``weight_v``, converted). Raises ModelError naming what differs.
    """
    shapes = expected_shapes(kind)
    state = dict(state)
    for key in list(state):
        if key.endswith(".weight") and key[: -len("weight")] + "weight_v" in shapes and key not in shapes:
            stem = key[: -len("weight")]
            if stem + "weight_orig" in state and stem + "weight_u" in state and stem + "weight_v" not in state:
                state[stem + "weight_v"] = _legacy_spectral_v(
                    state[stem + "weight_orig"], state[stem + "weight_u"], state.pop(key)
                )
    for key in shapes:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    parts = state_mismatch(state, shapes)
    if parts:
        guess = guess_kind(state)
        hint = (
            f"; it looks like a DeOldify {guess} generator"
            if guess and spec_for(kind).arch != SPECS[guess.split()[0]].arch
            else ""
        )
        raise ModelError(
            f"{source}: weights do not fit DeOldify {kind} ({spec_for(kind).description}): {'; '.join(parts)}{hint}"
        )
    return {k: owned(v.float() if v.is_floating_point() else v) for k, v in state.items()}


def guess_kind(state: dict[str, torch.Tensor]) -> str | None:
    """'artistic' or 'stable or video' (same architecture) from the body's keys; None if neither."""
    if "layers.0.4.0.conv3.weight" in state:
        return "stable or video"
    if "layers.0.4.0.conv1.weight" in state:
        return "artistic"
    return None


def generator_from_state(state: dict[str, torch.Tensor], kind: str, source: str) -> DeOldifyUnet:
    """Build on the meta device and adopt the checked tensors: no time spent on a random init."""
    fitted = fit_state(state, kind, source)
    model = build_generator(kind, "meta")
    model.load_state_dict(fitted, strict=True, assign=True)
    return model.eval()


# --------------------------------------------------------------------------- our safetensors form


def is_deoldify_file(path: str | Path) -> bool:
    """True for a safetensors file written by ``save_deoldify`` (the import command)."""
    return is_tagged_file(path, FILE_FORMAT)


def save_deoldify(model: DeOldifyUnet, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``model`` as safetensors with DeOldify's key names, atomically; returns the sha256."""
    path = Path(path)
    meta = {
        "format": FILE_FORMAT,
        "kind": model.spec.kind,
        "architecture": model.spec.description,
        "default_render_factor": str(RENDER_FACTOR),
        "default_render_factor_video": str(RENDER_FACTOR_VIDEO),
    }
    meta.update(metadata or {})
    return save_tagged(model, path, meta)


def load_deoldify_file(path: str | Path, expected_sha256: str | None = None) -> tuple[DeOldifyUnet, dict[str, str]]:
    """A generator from a file ``save_deoldify`` wrote (kind read from its metadata)."""
    state, meta = load_tagged(path, FILE_FORMAT, "DeOldify", expected_sha256)
    kind = meta.get("kind", "")
    spec_for(kind)
    return generator_from_state(state, kind, str(path)), meta


@dataclass(frozen=True)
class ImportResult:
    path: Path
    kind: str
    sha256: str
    parameters: int
    source_sha256: str


def import_deoldify(
    source: str | Path, kind: str, dest: str | Path, name: str | None = None, overwrite: bool = False
) -> ImportResult:
    """Convert a DeOldify ``.pth`` into our safetensors form (checked, atomically written)."""
    source, dest = Path(source), Path(dest)
    spec_for(kind)
    if dest.suffix != ".safetensors":
        raise OutputError(f"{dest}: the converted file must end in .safetensors")
    if dest.exists() and dest.resolve() == source.resolve():
        raise OutputError(f"{dest}: output would overwrite the input")
    if dest.exists() and not overwrite:
        raise OutputError(f"{dest} exists (use --overwrite to replace it)")
    if not dest.parent.is_dir():
        raise OutputError(f"{dest.parent}: no such directory")
    state = read_checkpoint(source)
    model = generator_from_state(state, kind, str(source))
    source_sha = sha256_file(source)
    meta = {"name": name or f"deoldify-{kind}", "source_file": source.name, "source_sha256": source_sha}
    digest = save_deoldify(model, dest, meta)
    return ImportResult(dest, kind, digest, parameter_count(model.state_dict()), source_sha)
