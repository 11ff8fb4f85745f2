"""Build the training index: every usable training photo with its size and sha256.

    python pipelines/build_index.py [--root ../shared/data/train] [--out pipelines/train-index.tsv]

Usable = what the trainers keep (readable, short side >= --min-side, mean chroma >= --min-chroma,
i.e. not grey-scale). Files are listed sorted, so the same folder always gives the same index. A
recipe trains on exactly these files with `[data] index = "pipelines/train-index.tsv"`; a missing
or changed file is then an error. The validation set is refused: never train on val/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidcolor.errors import VidcolorError  # noqa: E402
from vidcolor.train.data import DataFilter  # noqa: E402
from vidcolor.train.index import build_index, write_index  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--out", type=Path, default=Path("pipelines/train-index.tsv"))
    ap.add_argument("--min-side", type=int, default=DataFilter.min_side)
    ap.add_argument("--min-chroma", type=float, default=DataFilter.min_chroma)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if "val" in args.root.resolve().parts:
        print(f"error: {args.root} is (inside) a validation folder; the index is for training data only", file=sys.stderr)
        return 2
    start = time.time()

    def progress(done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"{done}/{total} checked", file=sys.stderr, flush=True)

    try:
        index = build_index(args.root, DataFilter(args.min_side, args.min_chroma), args.workers, progress)
        write_index(index, args.out)
    except VidcolorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(index.entries)} usable images under {index.root} -> {args.out} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
