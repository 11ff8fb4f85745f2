"""Copy the extra training photos (the thin categories of ../shared/data: food, faces, people)
out of public repositories brought here with the session's `fetch` tool, into a local cache that
is never committed, and index them.

    python pipelines/extra_data.py [--mirror /work/.mirror] [--out .cache/extra-train] \
        [--index pipelines/train-index-extra.tsv]

Each source is pinned by repository and commit; the files are read from the mirror's git objects
(`git show COMMIT:PATH`), so the same commits give the same files. The index records each file's
size and sha256: a recipe naming it (``[data] extra_index``) refuses a changed file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vidcolor.errors import VidcolorError
from vidcolor.train.data import DataFilter
from vidcolor.train.index import build_index, write_index


@dataclass(frozen=True)
class Source:
    repo: str  # owner/name on GitHub
    commit: str
    folder: str  # folder inside the repository
    name: str  # folder under the cache
    per_class: int  # at most this many files from each subfolder (0: all)
    what: str
    terms: str


SOURCES = (
    Source(
        "srohit0/food_mnist",
        "e6cdf589a9937cf7fcb53d3a86df053be452e1f5",
        "images",
        "food",
        50,
        "Food-101 subset (10 dishes), max side 512",
        "Food-101 terms: research use (images from foodspotting.com)",
    ),
    Source(
        "serengil/deepface",
        "243209fd7b46ecdecf72665cc25219f6e8181f25",
        "tests/unit/dataset",
        "faces",
        0,
        "close-up face photographs (the library's test set)",
        "repository MIT licence; photos of public figures",
    ),
    Source(
        "CMU-Perceptual-Computing-Lab/openpose",
        "5c5d96523ef917bd30301245fdc8343937cae48d",
        "examples/media",
        "people",
        0,
        "COCO val2014 photos of people",
        "COCO: CC BY 4.0 (Flickr images under their own licences)",
    ),
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True, capture_output=True).stdout


def copy_source(src: Source, mirror_root: Path, out: Path) -> int:
    mirror = mirror_root / src.repo.replace("/", "+") / "repo"
    if not mirror.exists():
        raise VidcolorError(f"{src.repo} is not fetched under {mirror_root} (use the session's fetch tool)")
    names = [
        n
        for n in git(mirror, "ls-tree", "-r", "--name-only", src.commit, src.folder).decode().splitlines()
        if n.lower().endswith(IMAGE_SUFFIXES)
    ]
    by_folder: dict[str, list[str]] = {}
    for n in sorted(names):
        by_folder.setdefault(n.rsplit("/", 1)[0], []).append(n)
    count = 0
    for files in by_folder.values():
        for n in files[: src.per_class or None]:
            target = out / src.name / n[len(src.folder) + 1 :]
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".partial")
                tmp.write_bytes(git(mirror, "show", f"{src.commit}:{n}"))
                tmp.rename(target)
            count += 1
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--out", type=Path, default=Path(".cache/extra-train"))
    ap.add_argument("--index", type=Path, default=Path("pipelines/train-index-extra.tsv"))
    args = ap.parse_args()
    try:
        for src in SOURCES:
            n = copy_source(src, args.mirror, args.out)
            print(f"{src.name}: {n} files from {src.repo}@{src.commit[:10]}:{src.folder} ({src.what}; {src.terms})")
        index = build_index(args.out, DataFilter())
        write_index(index, args.index)
    except (VidcolorError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(index.entries)} usable images -> {args.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
