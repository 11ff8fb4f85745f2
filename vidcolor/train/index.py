"""Training index: the exact list of training files (path, size, sha256) a run used.

A TSV file that ``pipelines/build_index.py`` writes once from the training folders (filter
applied); a recipe naming it in ``[data] index`` trains on exactly those files, and a changed or
missing file is an error instead of a silently different data set.

Format::

    # vidcolor-train-index 1
    # root: ../../shared/data/train          (relative to the index file's folder)
    # filter: min_side=64 min_chroma=3.0
    path<TAB>size<TAB>sha256
    imagenette/n01440764_1.JPEG<TAB>12345<TAB>9f2c...
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vidcolor.errors import InputError
from vidcolor.hashing import sha256_file
from vidcolor.train.data import DataFilter, is_usable, list_images

MAGIC = "# vidcolor-train-index 1"


@dataclass(frozen=True)
class IndexEntry:
    path: str  # relative to the index root, '/'-separated
    size: int
    sha256: str


@dataclass(frozen=True)
class TrainIndex:
    root: Path  # absolute
    entries: tuple[IndexEntry, ...]
    filter: str = ""

    def paths(self) -> list[Path]:
        return [self.root / e.path for e in self.entries]


def _entry(args: tuple[Path, Path, DataFilter]) -> IndexEntry | None:
    path, root, flt = args
    if not is_usable(path, flt):
        return None
    return IndexEntry(path.relative_to(root).as_posix(), path.stat().st_size, sha256_file(path))


def build_index(
    root: Path, flt: DataFilter = DataFilter(), workers: int = 2, progress: Callable[[int, int], None] | None = None
) -> TrainIndex:
    """Index the usable images under ``root`` (sorted, so the same folder gives the same index)."""
    root = root.resolve()
    if not root.is_dir():
        raise InputError(f"training folder not found: {root}")
    paths = list_images([root])
    jobs = [(p, root, flt) for p in paths]
    entries: list[IndexEntry] = []
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for i, entry in enumerate(pool.map(_entry, jobs, chunksize=64), 1):
            if entry is not None:
                entries.append(entry)
            if progress is not None:
                progress(i, len(jobs))
    return TrainIndex(root, tuple(entries), f"min_side={flt.min_side} min_chroma={flt.min_chroma}")


_SYNSET = re.compile(r"n\d{8}")


def class_key(path: str) -> str:
    """The class an index path belongs to: its folder plus the first ImageNet synset in the name
    (``imagenette/train_n01440764_x.jpg`` -> ``imagenette/n01440764``); else the path itself."""
    folder, _, name = path.rpartition("/")
    match = _SYNSET.search(name)
    return f"{folder}/{match.group(0)}" if match else path


def cap_per_class(index: TrainIndex, cap: int, folders: Sequence[str] = ()) -> TrainIndex:
    """At most ``cap`` entries of each class (see class_key) in ``folders`` (all when empty).

    The kept files are the ones with the smallest sha256: a fixed, content-defined pseudo-random
    choice that does not depend on file order, so the same data always gives the same subset."""
    if cap < 1:
        raise ValueError(f"cap {cap} must be >= 1")
    limited = lambda e: not folders or e.path.split("/", 1)[0] in folders  # noqa: E731
    by_class: dict[str, list[IndexEntry]] = {}
    for e in index.entries:
        if limited(e):
            by_class.setdefault(class_key(e.path), []).append(e)
    keep = {e.path for group in by_class.values() for e in sorted(group, key=lambda e: e.sha256)[:cap]}
    entries = tuple(e for e in index.entries if not limited(e) or e.path in keep)
    return TrainIndex(index.root, entries, index.filter)


def write_index(index: TrainIndex, path: Path) -> None:
    """Write atomically; the root is stored relative to the index file's folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = os.path.relpath(index.root, path.parent.resolve())
    lines = [MAGIC, f"# root: {Path(root).as_posix()}", f"# filter: {index.filter}", "path\tsize\tsha256"]
    lines += [f"{e.path}\t{e.size}\t{e.sha256}" for e in index.entries]
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def read_index(path: str | Path) -> TrainIndex:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read training index {path}: {exc}") from exc
    if not lines or lines[0].strip() != MAGIC:
        raise InputError(f"{path} is not a vidcolor training index (first line should be {MAGIC!r})")
    header = {}
    body: list[str] = []
    for line in lines[1:]:
        if line.startswith("# ") and ":" in line and not body:
            key, _, value = line[2:].partition(":")
            header[key.strip()] = value.strip()
        elif line and line != "path\tsize\tsha256":
            body.append(line)
    if "root" not in header:
        raise InputError(f"{path}: training index has no '# root:' line")
    entries = []
    for n, line in enumerate(body, 1):
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
            raise InputError(f"{path}: malformed index row {n}: {line[:80]!r}")
        entries.append(IndexEntry(parts[0], int(parts[1]), parts[2]))
    root = (path.parent / header["root"]).resolve()
    return TrainIndex(root, tuple(entries), header.get("filter", ""))


def check_index(index: TrainIndex, verify_sha256: bool = False) -> list[Path]:
    """The index's files, after checking each exists with its recorded size (and hash)."""
    paths = index.paths()
    for entry, p in zip(index.entries, paths):
        try:
            size = p.stat().st_size
        except OSError:
            raise InputError(f"training index lists {entry.path}, missing under {index.root}") from None
        if size != entry.size or (verify_sha256 and sha256_file(p) != entry.sha256):
            raise InputError(f"training file {p} changed since the index was built")
    return paths


def training_paths(
    roots: Sequence[str], index: str = "", verify_sha256: bool = False, extra_indexes: Sequence[str] = ()
) -> list[Path]:
    """The files a recipe trains on: its index when it names one, else everything under roots;
    then the files of each extra index (e.g. photos fetched into a local cache)."""
    paths = check_index(read_index(index), verify_sha256) if index else list_images(roots)
    for extra in extra_indexes:
        paths += check_index(read_index(extra), verify_sha256)
    return paths
