"""Build the training index: every usable training photo with its size and sha256.

    python pipelines/build_index.py [--root ../shared/data/train] [--out pipelines/train-index.tsv]
    python pipelines/build_index.py --from-index pipelines/train-index.tsv --cap-per-class 200 \
        --cap-folders imagenette --out pipelines/train-index-v2.tsv      # the v2 model's data

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

from vidcolor.errors import VidcolorError
from vidcolor.train.data import DataFilter
from vidcolor.train.index import build_index, cap_per_class, read_index, write_index


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--out", type=Path, default=Path("pipelines/train-index.tsv"))
    ap.add_argument("--min-side", type=int, default=DataFilter.min_side)
    ap.add_argument("--min-chroma", type=float, default=DataFilter.min_chroma)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--cap-per-class",
        type=int,
        default=0,
        metavar="N",
        help="keep at most N images of each class (folder + ImageNet synset)",
    )
    ap.add_argument(
        "--cap-folders",
        nargs="*",
        default=[],
        metavar="FOLDER",
        help="top-level folders the cap applies to (default: all)",
    )
    ap.add_argument("--from-index", type=Path, help="start from this index instead of re-checking the folder (fast)")
    args = ap.parse_args()
    if "val" in args.root.resolve().parts:
        print(
            f"error: {args.root} is (inside) a validation folder; the index is for training data only", file=sys.stderr
        )
        return 2
    start = time.time()

    def progress(done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"{done}/{total} checked", file=sys.stderr, flush=True)

    try:
        if args.from_index:
            index = read_index(args.from_index)
        else:
            index = build_index(args.root, DataFilter(args.min_side, args.min_chroma), args.workers, progress)
        if args.cap_per_class:
            index = cap_per_class(index, args.cap_per_class, args.cap_folders)
        write_index(index, args.out)
    except VidcolorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(index.entries)} usable images under {index.root} -> {args.out} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
