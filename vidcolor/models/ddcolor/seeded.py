"""Seeded DDColor weights: the same tensors from the same seed on any machine.

Used to check this port against DDColor's own code (``pipelines/ddcolor_reference.py``,
``tests/test_ddcolor_reference.py``) without the published files, which cannot be downloaded
here. Drawn as vidcolor.models.seeding draws (PCG64 per key, no BLAS).

Random but usable: convolutions and linear layers He-scaled, norms' scales near 1, ConvNeXt's
layer scale open enough for every block to count, batch-norm variances positive, spectral-norm
vectors the weight's leading singular pair, and the head biased so that the picture comes out
clearly coloured within Lab's usual range (about ±40), not grey and not out of gamut.
"""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.models.ddcolor.network import IMAGENET_MEAN, IMAGENET_STD, build_network
from vidcolor.models.seeding import he_normal, key_rng, leading_singular_pair

SEED = 20261207
LAYER_SCALE = 0.3  # ConvNeXt's gamma
EMBED_STD = 0.5  # the learnt queries, their positions and the level embeddings
SN_GAIN = 1.5  # spectral-norm convolutions amplify by this much (v stored at 1/SN_GAIN)
HEAD_GAIN = 40.0  # the 1x1 head amplifies by this much: its inputs vary little at random
HEAD_BIAS = (12.0, 18.0)  # the head's ab bias: warm


def seeded_state(size: str, seed: int = SEED) -> dict[str, torch.Tensor]:
    """A full state dict for DDColor's ``size`` network, in the model's key order."""
    template = build_network(size, "meta").state_dict()
    state: dict[str, np.ndarray] = {}
    for key, ref in template.items():
        shape = tuple(ref.shape)
        rng = key_rng(seed, key)
        stem, _, leaf = key.rpartition(".")
        if key == "mean":
            state[key] = np.asarray(IMAGENET_MEAN).reshape(shape)
        elif key == "std":
            state[key] = np.asarray(IMAGENET_STD).reshape(shape)
        elif leaf == "num_batches_tracked":
            state[key] = np.zeros((), dtype=np.int64)
        elif leaf == "running_mean":
            state[key] = rng.standard_normal(shape) * 0.05
        elif leaf == "running_var":
            state[key] = rng.uniform(0.6, 1.6, shape)
        elif leaf == "gamma":
            state[key] = np.full(shape, LAYER_SCALE)
        elif leaf in ("weight_u", "weight_v"):
            continue  # filled with its weight_orig below
        elif leaf == "weight_orig":
            weight = he_normal(rng, shape)
            state[key] = weight
            u, v = leading_singular_pair(weight, key_rng(seed, stem + ".power"))
            gain = HEAD_GAIN if stem.startswith("refine_net.") else SN_GAIN
            state[f"{stem}.weight_u"], state[f"{stem}.weight_v"] = u, v / gain
        elif stem.startswith("refine_net.") and leaf == "bias":
            state[key] = rng.standard_normal(shape) * 0.5 + np.asarray(HEAD_BIAS)
        elif leaf.endswith("bias"):
            state[key] = rng.standard_normal(shape) * 0.05
        elif key.endswith(("query_feat.weight", "query_embed.weight", "level_embed.weight")):
            state[key] = rng.standard_normal(shape) * EMBED_STD
        elif leaf == "weight" and len(shape) == 1:  # a norm's scale
            state[key] = rng.uniform(0.7, 1.0, shape)
        elif leaf in ("weight", "in_proj_weight"):
            state[key] = he_normal(rng, shape)
        else:
            raise ValueError(f"no rule for {key}")
    out = {}
    for key, ref in template.items():
        dtype = np.int64 if ref.dtype == torch.long else np.float32
        value = np.asarray(state[key], dtype=dtype)
        out[key] = torch.from_numpy(value.copy() if value.ndim == 0 else np.ascontiguousarray(value))
    return out


def published_layout(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """``state`` as DDColor's trainer (BasicSR's ``save_network``) writes it: ``{'params': state}``."""
    return {"params": state}
