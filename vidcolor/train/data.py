"""Training images: find them, drop unusable ones, and cache them decoded in memory.

Decoding thousands of JPEGs every epoch would take the CPU away from the model, so images are
decoded once into a square uint8 array (short side resized, centre crop) and augmented from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcolor.train.augment import AugmentConfig, augment_batch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(roots: Sequence[str | Path]) -> list[Path]:
    """All image files under ``roots`` (files or folders), sorted for reproducibility."""
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.append(root)
        else:
            found.extend(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return sorted(found)


def ab_spread(rgb: np.ndarray) -> float:
    """Standard deviation of the chroma of an RGB uint8 image: near 0 for grey-scale photos."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    return float(np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0).mean())


def load_square(path: Path, size: int) -> np.ndarray | None:
    """Decode, resize the short side to ``size`` and centre-crop; None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    h, w = bgr.shape[:2]
    scale = size / min(h, w)
    bgr = cv2.resize(bgr, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = bgr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return cv2.cvtColor(bgr[top : top + size, left : left + size], cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class DataFilter:
    min_side: int = 64  # smaller images carry too little context
    min_chroma: float = 3.0  # mean chroma magnitude below this: a grey-scale photo


def is_usable(path: Path, flt: DataFilter) -> bool:
    """Readable, large enough and not grey-scale: what the trainers keep."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or min(bgr.shape[:2]) < flt.min_side:
        return False
    return ab_spread(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) >= flt.min_chroma


def _load_checked(args: tuple[Path, int, DataFilter]) -> np.ndarray | None:
    path, size, flt = args
    return load_square(path, size) if is_usable(path, flt) else None


def build_cache(
    paths: Sequence[Path], size: int, flt: DataFilter = DataFilter(), workers: int = 2
) -> tuple[np.ndarray, list[Path]]:
    """Decode ``paths`` into an (N, size, size, 3) uint8 array, keeping only usable images."""
    kept: list[np.ndarray] = []
    kept_paths: list[Path] = []
    jobs = [(p, size, flt) for p in paths]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_load_checked, jobs, chunksize=64))
    else:
        results = [_load_checked(j) for j in jobs]
    for path, img in zip(paths, results):
        if img is not None:
            kept.append(img)
            kept_paths.append(path)
    array = np.stack(kept) if kept else np.zeros((0, size, size, 3), np.uint8)
    return array, kept_paths


def cache_key(paths: Sequence[Path], size: int, flt: DataFilter) -> str:
    h = hashlib.sha256(f"{size}|{flt}".encode())
    for p in paths:
        h.update(str(p).encode())
    return h.hexdigest()[:16]


def load_or_build_cache(
    paths: Sequence[Path], size: int, cache_dir: Path, flt: DataFilter = DataFilter(), workers: int = 2
) -> np.ndarray:
    """Cached decode keyed by the file list, size and filter; rebuilt when any changes."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"images-{cache_key(paths, size, flt)}.npy"
    if target.exists():
        return np.load(target, mmap_mode="r")
    array, _ = build_cache(paths, size, flt, workers)
    tmp = target.with_suffix(".partial.npy")
    np.save(tmp, array)
    tmp.rename(target)
    return np.load(target, mmap_mode="r")


def split_holdout(n: int, holdout: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split of range(n) into (train, holdout) indices."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


class BatchStream:
    """Shuffled epochs of augmented batches, where batch ``k`` depends only on (seed, k).

    Each epoch's order and each batch's augmentation come from generators seeded by the epoch and
    the batch number, so a run resumed from a checkpoint at step k sees exactly the batches an
    uninterrupted run would have: resuming is bit-for-bit the same training.
    """

    def __init__(
        self, images: np.ndarray, indices: np.ndarray, batch_size: int, augment: AugmentConfig, seed: int = 0
    ) -> None:
        if len(indices) < batch_size:
            raise ValueError(f"{len(indices)} training images cannot fill a batch of {batch_size}")
        self.images, self.indices, self.batch_size, self.augment, self.seed = images, indices, batch_size, augment, seed
        self.per_epoch = len(indices) // batch_size
        self._epoch, self._order = -1, indices

    def generator(self, stream: int, k: int) -> torch.Generator:
        """A generator for random stream ``stream`` (0: order, 1: augmentation, 2+: free for
        callers, e.g. simulated hints) at batch ``k``: the same numbers on every resume."""
        return self._seeded(stream, k)

    def _seeded(self, stream: int, k: int) -> torch.Generator:
        # A fixed mix (not hash(), whose algorithm Python may change) of seed, stream and number.
        return torch.Generator().manual_seed(((self.seed * 1_000_003 + stream) * 1_000_000_007 + k) % (1 << 63))

    def batch(
        self, k: int, augment: AugmentConfig | None = None, part: tuple[int, int] = (0, 1)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``k``: (RGB target (B,3,S,S) in [0,1], degraded luma (B,1,S,S)).

        ``augment`` overrides the stream's augmentation for this batch (a later crop size).
        ``part=(i, n)``: only share i of n (every n-th image), augmented on its own random stream,
        so data-parallel ranks each prepare just their slice of the global batch."""
        epoch, slot = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            perm = torch.randperm(len(self.indices), generator=self._seeded(0, epoch)).numpy()
            self._epoch, self._order = epoch, self.indices[perm]
        i, n = part
        pick = np.sort(self._order[slot * self.batch_size : (slot + 1) * self.batch_size])[i::n]
        rgb = torch.from_numpy(np.ascontiguousarray(self.images[pick])).permute(0, 3, 1, 2).float() / 255.0
        gen = self._seeded(1, k) if n == 1 else self._seeded(1 + 1000 * (i + 1), k)
        return augment_batch(rgb, augment or self.augment, gen)

    def __call__(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        k = start
        while True:
            yield self.batch(k)
            k += 1
