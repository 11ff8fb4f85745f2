"""The packed training corpus: every picture decoded once into two memory-mapped uint8 arrays.

A training step must not wait on JPEG decoding, and two training processes must share one copy
of the pictures in memory, so ``pipelines/build_corpus.py`` decodes the corpus once into a folder:

    corpus.json      sizes, counts, the filter thresholds and the corpus fingerprint
    manifest.tsv     one row per packed picture: source, path, sha256, size, statistics, slots
    low.u8           (N_low, L, L, 3) RGB: every picture, short side resized to L, centre crop
    high.u8          (N_high, H, H, 3) RGB: the pictures whose short side is at least min_high_side

The arrays hold every decodable, unique picture; which rows train is decided when the corpus is
opened (``CorpusFilter``), so the near-grey and flat-graphics thresholds can be revisited without
decoding anything again. Held-out rows (``holdout`` column) never train.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcolor.errors import InputError

FORMAT = "vidcolor-corpus 1"
MANIFEST_COLUMNS = (
    "source",
    "path",
    "sha256",
    "bytes",
    "width",
    "height",
    "saturation",
    "flatness",
    "holdout",
    "low",
    "high",
)


@dataclass(frozen=True)
class CorpusFilter:
    """Which packed pictures train: colourful enough and not a drawing or a logo."""

    min_saturation: float = 0.03  # mean HSV saturation; below it a picture is (near) grey
    # Share of pixels in the 8 most common exact colours; above it: drawings, logos, cut-outs.
    max_flatness: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_saturation < 1.0:
            raise ValueError(f"min_saturation {self.min_saturation} must be in [0, 1)")
        if not 0.0 < self.max_flatness <= 1.0:
            raise ValueError(f"max_flatness {self.max_flatness} must be in (0, 1]")


@dataclass(frozen=True)
class CorpusRow:
    source: str
    path: str
    sha256: str
    saturation: float
    flatness: float
    holdout: bool
    low: int  # row in low.u8
    high: int  # row in high.u8, -1 when the picture is too small for it


@dataclass(frozen=True)
class Corpus:
    """An opened corpus: the two arrays (memory-mapped, read-only) and the rows that describe them."""

    root: Path
    low: np.ndarray
    high: np.ndarray
    rows: tuple[CorpusRow, ...]
    fingerprint: str

    def usable(self, flt: CorpusFilter) -> list[CorpusRow]:
        return [r for r in self.rows if r.saturation >= flt.min_saturation and r.flatness <= flt.max_flatness]

    def split(self, flt: CorpusFilter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low rows that train, high rows that train, high rows held out), each sorted."""
        rows = self.usable(flt)
        low = np.array(sorted(r.low for r in rows if not r.holdout), dtype=np.int64)
        high = np.array(sorted(r.high for r in rows if r.high >= 0 and not r.holdout), dtype=np.int64)
        held = np.array(sorted(r.high for r in rows if r.high >= 0 and r.holdout), dtype=np.int64)
        return low, high, held


def manifest_fingerprint(shas: list[str]) -> str:
    """sha256 over the sorted sha256s of the packed pictures: two corpora with the same
    fingerprint hold the same pictures."""
    h = hashlib.sha256()
    for s in sorted(shas):
        h.update(s.encode())
    return h.hexdigest()


def _array(path: Path, count: int, side: int) -> np.ndarray:
    expected = count * side * side * 3
    if not path.is_file() or path.stat().st_size != expected:
        raise InputError(
            f"corpus array {path} is missing or not {count} pictures of {side}x{side}: rebuild it with "
            "pipelines/build_corpus.py"
        )
    if count == 0:
        return np.zeros((0, side, side, 3), np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(count, side, side, 3))


def open_corpus(root: str | Path, fingerprint: str = "") -> Corpus:
    """Open a packed corpus folder; with ``fingerprint``, refuse any other corpus."""
    root = Path(root)
    try:
        meta = json.loads((root / "corpus.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"no packed corpus at {root} ({exc}): build it with pipelines/build_corpus.py") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{root}/corpus.json is not a {FORMAT!r} corpus")
    if fingerprint and meta.get("fingerprint") != fingerprint:
        raise InputError(
            f"corpus {root} has fingerprint {str(meta.get('fingerprint'))[:12]}..., the recipe wants "
            f"{fingerprint[:12]}..."
        )
    rows = []
    with (root / "manifest.tsv").open(newline="") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            rows.append(
                CorpusRow(
                    rec["source"],
                    rec["path"],
                    rec["sha256"],
                    float(rec["saturation"]),
                    float(rec["flatness"]),
                    rec["holdout"] == "1",
                    int(rec["low"]),
                    int(rec["high"]),
                )
            )
    low = _array(root / "low.u8", int(meta["low_count"]), int(meta["low_side"]))
    high = _array(root / "high.u8", int(meta["high_count"]), int(meta["high_side"]))
    return Corpus(root, low, high, tuple(rows), str(meta["fingerprint"]))
