"""Seeded DeOldify generator weights: the same tensors from the same seed on any machine.

Used to check this port against DeOldify's own code (``pipelines/deoldify_reference.py``,
``tests/test_deoldify_reference.py``) without DeOldify's published files, which cannot be
downloaded here. Every tensor is drawn with NumPy's PCG64 from ``(seed, crc32(key))``, so a key's
values do not depend on the order of the others, and only elementwise NumPy arithmetic and
NumPy's own (pairwise) sums are used: no BLAS call whose rounding could differ between CPUs.

The weights are random but make a usable network: convolutions He-scaled, batch-norm variances
positive, spectral-norm vectors the weight's leading singular pair (a few power iterations),
the self-attention gate open, and the head biased so that the picture comes out clearly coloured,
not grey.
"""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.models.deoldify.unet import build_generator, spec_for
from vidcolor.models.seeding import (  # noqa: F401  (state_digest: re-exported)
    POWER_ITERATIONS,
    he_normal,
    key_rng,
    leading_singular_pair,
    state_digest,
)

SEED = 20261205
# Spectral norm divides a weight by sigma = u·W·v from its stored vectors; v stored at 1/SN_GAIN of
# the unit singular vector makes sigma that much smaller, so each such convolution amplifies by
# SN_GAIN instead of contracting (a random matrix's top singular value is well above its typical
# gain, and unamplified the head's output would hardly leave the mean: a grey picture).
SN_GAIN = {"deep": 2.0, "wide": 1.5}  # the wide U-Net chains more of them
# The head's bias, in ImageNet-normalised units per RGB channel: warm (red up, blue down).
HEAD_BIAS = (0.6, 0.1, -0.5)


def seeded_state(kind: str, seed: int = SEED) -> dict[str, torch.Tensor]:
    """A full state dict for DeOldify's ``kind`` generator, in the model's key order."""
    spec = spec_for(kind)
    template = build_generator(kind, "meta").state_dict()
    head = max(int(k.split(".")[1]) for k in template if k.startswith("layers."))  # the 1x1 head conv
    head_prefix = f"layers.{head - 1}."
    state: dict[str, np.ndarray] = {}
    for key, ref in template.items():
        shape = tuple(ref.shape)
        rng = key_rng(seed, key)
        stem, leaf = key.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            state[key] = np.zeros((), dtype=np.int64)
        elif leaf == "running_mean":
            state[key] = rng.standard_normal(shape) * 0.05
        elif leaf == "running_var":
            state[key] = rng.uniform(0.6, 1.6, shape)
        elif leaf == "gamma":
            state[key] = np.full(shape, 0.5)
        elif leaf in ("weight_u", "weight_v") and f"{stem}.weight_orig" in template:
            continue  # filled with its weight_orig below
        elif leaf == "weight_orig":
            weight = he_normal(rng, shape)
            state[key] = weight
            u, v = leading_singular_pair(weight, key_rng(seed, stem + ".power"))
            state[f"{stem}.weight_u"], state[f"{stem}.weight_v"] = u, v / SN_GAIN[spec.unet]
        elif leaf == "weight_v":  # weight norm's direction
            state[key] = he_normal(rng, shape)
        elif leaf == "weight_g":
            state[key] = rng.uniform(0.8, 1.2, shape)
        elif leaf == "bias":
            bias = rng.standard_normal(shape) * 0.05
            if key.startswith(head_prefix) and shape == (3,):
                bias = bias + np.asarray(HEAD_BIAS)
            state[key] = bias
        elif leaf == "weight" and len(shape) == 1:  # batch-norm scale
            state[key] = rng.uniform(0.7, 1.0, shape)
        elif leaf == "weight":
            state[key] = he_normal(rng, shape)
        else:
            raise ValueError(f"no rule for {key}")
    out = {}
    for key, ref in template.items():
        value = state[key]
        dtype = np.int64 if ref.dtype == torch.long else np.float32
        value = np.asarray(value, dtype=dtype)  # no copy where it already is float32
        out[key] = torch.from_numpy(value.copy() if value.ndim == 0 else np.ascontiguousarray(value))
    return out


def learn_save_layout(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """``state`` as fastai's ``learn.save`` writes it with an optimiser: ``{'model', 'opt'}``, the
    optimiser's param groups holding discriminative learning rates as ``slice`` objects."""
    groups = [
        {
            "lr": slice(1e-5, 1e-3, None),
            "betas": (0.9, 0.99),
            "eps": 1e-5,
            "weight_decay": 1e-3,
            "amsgrad": False,
            "params": [i],
        }
        for i in range(3)
    ]
    return {"model": state, "opt": {"state": {}, "param_groups": groups}}
