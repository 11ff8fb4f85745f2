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


def _load_checked(args: tuple[Path, int, DataFilter]) -> np.ndarray | None:
    path, size, flt = args
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or min(bgr.shape[:2]) < flt.min_side:
        return None
    if ab_spread(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) < flt.min_chroma:
        return None
    return load_square(path, size)


def build_cache(paths: Sequence[Path], size: int, flt: DataFilter = DataFilter(), workers: int = 2) -> tuple[np.ndarray, list[Path]]:
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


def load_or_build_cache(paths: Sequence[Path], size: int, cache_dir: Path, flt: DataFilter = DataFilter()) -> np.ndarray:
    """Cached decode keyed by the file list, size and filter; rebuilt when any changes."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"images-{cache_key(paths, size, flt)}.npy"
    if target.exists():
        return np.load(target, mmap_mode="r")
    array, _ = build_cache(paths, size, flt)
    tmp = target.with_suffix(".partial.npy")
    np.save(tmp, array)
    tmp.rename(target)
    return np.load(target, mmap_mode="r")


def split_holdout(n: int, holdout: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split of range(n) into (train, holdout) indices."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def batches(
    images: np.ndarray,
    indices: np.ndarray,
    batch_size: int,
    augment: AugmentConfig,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches of (RGB target (B,3,S,S) in [0,1], degraded luma (B,1,S,S))."""
    while True:
        order = indices[torch.randperm(len(indices), generator=generator).numpy()]
        for start in range(0, len(order) - batch_size + 1, batch_size):
            pick = np.sort(order[start : start + batch_size])
            rgb = torch.from_numpy(np.ascontiguousarray(images[pick])).permute(0, 3, 1, 2).float() / 255.0
            yield augment_batch(rgb, augment, generator)
