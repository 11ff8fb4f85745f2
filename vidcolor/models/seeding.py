"""Seeded weights for checking a port against its publisher's own code: the same tensors from the
same seed on any machine (DeOldify's and DDColor's seeded states use these).

Every tensor is drawn with NumPy's PCG64 from ``(seed, crc32(key))``, so a key's values do not
depend on the order of the others, and only elementwise NumPy arithmetic and NumPy's own
(pairwise) sums are used: no BLAS call whose rounding could differ between CPUs.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch

POWER_ITERATIONS = 6


def key_rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], gain: float = 1.0) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(gain * np.sqrt(2.0 / fan_in))
    return out


def matvec(mat: np.ndarray, vec: np.ndarray, transpose: bool = False) -> np.ndarray:
    # einsum without ``optimize`` runs NumPy's own loops (no BLAS) and makes no temporary matrix.
    return np.einsum("ij,i->j" if transpose else "ij,j->i", mat, vec, optimize=False)


def unit(vec: np.ndarray) -> np.ndarray:
    return (vec / max(float(np.sqrt((vec * vec).sum())), 1e-12)).astype(np.float32)


def leading_singular_pair(
    weight: np.ndarray, rng: np.random.Generator, iterations: int = POWER_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) for spectral norm's state: power iteration on the weight flattened to (out, rest)."""
    mat = weight.reshape(weight.shape[0], -1)
    v = unit(rng.standard_normal(mat.shape[1], dtype=np.float32))
    u = unit(matvec(mat, v))
    for _ in range(iterations):
        v = unit(matvec(mat, u, transpose=True))
        u = unit(matvec(mat, v))
    return u, v


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over keys and raw bytes, in key order: two states are bit-identical iff equal."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(key.encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
