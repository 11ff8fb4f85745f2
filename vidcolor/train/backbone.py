"""Moving a trained encoder between runs (Colorify's transfer between methods).

``export_backbone`` writes the EfficientNet-Lite0 encoder of a trained generator (a
``model.safetensors`` or a run's ``checkpoint.pt``) to its own safetensors file whose metadata
names the architecture; ``import_backbone`` initialises a new generator's encoder from it, e.g.
to start a regression run from a classification model's features.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from vidcolor.errors import ModelError
from vidcolor.models.efficientnet import FEATURE_CHANNELS, EfficientNetLite0Encoder
from vidcolor.models.weights import read_metadata, write_safetensors

FORMAT = "vidcolor-backbone"
ARCHITECTURE = "efficientnet-lite0"
PREFIX = "encoder."


def _encoder_state(source: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Encoder weights (keys without the ``encoder.`` prefix) and facts about their origin."""
    if not source.is_file():
        raise ModelError(f"model or checkpoint not found: {source}")
    if source.suffix == ".safetensors":
        meta = read_metadata(source)
        state = load_file(str(source))
        if meta.get("format") == FORMAT:
            return state, {k: v for k, v in meta.items() if k.startswith("source")}
        if meta.get("format") != "vidcolor-generator":
            raise ModelError(f"{source}: neither a vidcolor generator nor a backbone file")
        head = json.loads(meta.get("config", "{}")).get("head", "")
        origin = {"source": source.name, "source_head": head, "source_name": meta.get("name", "")}
    else:
        try:
            ckpt = torch.load(source, map_location="cpu", weights_only=True)
            state = ckpt["model"]
        except Exception as exc:  # not a checkpoint: unpickling refused, wrong layout, ...
            raise ModelError(f"{source}: not a vidcolor training checkpoint ({type(exc).__name__})") from exc
        origin = {
            "source": source.name,
            "source_step": str(ckpt.get("step", "")),
            "source_mode": str(ckpt.get("mode", "")),
        }
    encoder = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    if not encoder:
        raise ModelError(f"{source}: holds no encoder weights")
    return encoder, origin


def _check(state: dict[str, torch.Tensor], where: str) -> None:
    own = EfficientNetLite0Encoder(in_channels=1).state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ModelError(
            f"{where}: not a grey-input EfficientNet-Lite0 encoder (missing {missing[:2]}, unexpected "
            f"{unexpected[:2]}, wrong shape {wrong[:2]})"
        )


def export_backbone(source: str | Path, path: str | Path) -> str:
    """Write the encoder of ``source`` to ``path`` atomically; returns the new file's sha256."""
    source, path = Path(source), Path(path)
    state, origin = _encoder_state(source)
    _check(state, str(source))
    meta = {
        "format": FORMAT,
        "architecture": ARCHITECTURE,
        "in_channels": "1",
        "feature_channels": json.dumps(list(FEATURE_CHANNELS)),
        **origin,
    }
    return write_safetensors(state, path, meta)


def load_backbone(path: str | Path) -> dict[str, torch.Tensor]:
    """Read and check a backbone file written by ``export_backbone``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"backbone file not found: {path}")
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"{path}: not a vidcolor backbone file (export one with `vidcolor train ... --export-backbone`)"
        )
    if meta.get("architecture") != ARCHITECTURE or meta.get("in_channels") != "1":
        raise ModelError(
            f"{path}: backbone is {meta.get('architecture')} with {meta.get('in_channels')} input channels; need "
            f"{ARCHITECTURE} with 1"
        )
    state = load_file(str(path))
    _check(state, str(path))
    return state


def import_backbone(encoder: EfficientNetLite0Encoder, path: str | Path) -> None:
    encoder.load_state_dict(load_backbone(path), strict=True)
