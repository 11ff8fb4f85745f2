"""Build v3's training corpus from the pinned public repositories of ../shared/data/SOURCES.tsv,
the photos of ../shared/data/train and v2's extra sources (pipelines/corpus-extra-sources.tsv), packed for
training (vidcolor/train/corpus.py describes the folder it writes).

    python pipelines/build_corpus.py [--mirror /work/.mirror] [--shared ../shared/data] \
        [--out .cache/corpus-v3] [--workers 2] [--extra pipelines/corpus-extra-sources.tsv]

Every repository is read from its git objects at the pinned commit (`git cat-file`), never from a
work tree, so the same commits always give the same corpus; the folder is a local cache, never
committed. Kept out, in this order:
- byte-identical pictures (sha256) and near-duplicates (the same 64-bit difference hash);
- anything that looks like a held-out picture: BSDS500 (val/bsds500) or a frame of the DAVIS
  clips in video-tune (difference hash within GUARD_BITS bits);
- pictures smaller than MIN_SIDE, or that do not decode.
Near-grey pictures and flat graphics (drawings, logos) are packed too, with their statistics in
the manifest, and left out of training by the CorpusFilter when the corpus is opened.
Sources are capped by folder (CAPS) so faces and pets do not dominate; the kept files of a capped
folder are those with the smallest git object id: a content-defined choice independent of names.
Roughly 1 in 64 pictures of the repositories (by sha256) is held out for judging the run.

    python pipelines/build_corpus.py --append pipelines/corpus-film-sources.tsv

adds more sources to the end of a built corpus, for training only: the rows already packed keep
their numbers and the holdout stays the same pictures (v3's film-thin sources, added mid-run).

"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

from vidcolor.media.outfile import atomic_write
from vidcolor.train.corpus import FORMAT, MANIFEST_COLUMNS, manifest_fingerprint

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LOW_SIDE = 64  # the low-resolution stage (Tiny ImageNet's own size)
HIGH_SIDE = 192  # the main and final stages crop 85-100% of this
MIN_HIGH_SIDE = 128  # pictures at least this large (short side) also go into the high array
MIN_SIDE = 56
GUARD_BITS = 5
HOLDOUT_MODULUS = 64
# At most this many files per folder of a source (0: all): faces and pets would otherwise be half.
CAPS = {
    "karemsaeed21/cat_vs_dog_classification_CNN": 6000,  # Cat and Dog: 12,000 of 25,000
    "xerow03/UTKFace": 8000,  # of 23,318 aligned faces
    "MachineLearning2020/Homework2-Caltech101": 150,  # airplanes, motorbikes, faces have 400-800
    "shared/imagenette": 500,  # 10 classes of 1,000
    "srohit0/food_mnist": 50,
    "SilviuBR24/room-classification": 1000,  # interiors for films: 6,000 of 30,000, 1,000 a room
}
# Decoding workers are started afresh, not forked: a forked worker would inherit the write end of
# a running `git cat-file --batch`'s input, and git would never see it close.
SPAWN = multiprocessing.get_context("spawn")
SHARED_FOLDERS = ("imagenet_sample", "imagenette", "urban_scenes", "intel_scenes")


@dataclass(frozen=True)
class Source:
    repo: str  # owner/name, or shared/<folder> for ../shared/data/train/<folder>
    commit: str
    folders: tuple[str, ...]
    skip: tuple[str, ...]
    terms: str
    holdout: bool  # may lend pictures to the holdout (not v2's own training photos)


@dataclass(frozen=True)
class Item:
    source: str
    path: str
    blob: str  # git object id, or the file's path for shared files


def read_sources(tsv: Path) -> list[Source]:
    sources = []
    for line in tsv.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        repo, commit, folders, skip, *rest = line.split("\t")
        sources.append(
            Source(repo, commit, tuple(folders.split()), tuple(skip.split()), rest[-1] if rest else "", True)
        )
    return sources


def git_dir(mirror: Path, repo: str) -> Path:
    base = mirror / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def list_items(src: Source, mirror: Path, shared: Path) -> list[Item]:
    """The source's picture files (capped per folder), sorted by path."""
    if src.repo.startswith("shared/"):
        folder = shared / src.repo.split("/", 1)[1]
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        entries = [(p.relative_to(shared).as_posix(), str(p), _synset_folder(p)) for p in files]
    else:
        gd = git_dir(mirror, src.repo)
        if not gd.exists():
            raise SystemExit(f"error: {src.repo} is not fetched under {mirror} (use the session's fetch tool)")
        out = subprocess.run(
            ["git", "--git-dir", str(gd), "ls-tree", "-r", src.commit, "--", *src.folders],
            check=True,
            capture_output=True,
        ).stdout.decode()
        entries = []
        for line in out.splitlines():
            meta, path = line.split("\t", 1)
            parts = path.split("/")
            if not path.lower().endswith(IMAGE_SUFFIXES) or any(s in part for s in src.skip for part in parts):
                continue
            entries.append((path, meta.split()[2], path.rsplit("/", 1)[0]))
    cap = CAPS.get(src.repo, 0)
    by_folder: dict[str, list[tuple[str, str, str]]] = {}
    for e in entries:
        by_folder.setdefault(e[2], []).append(e)
    keep = []
    for group in by_folder.values():
        keep += sorted(
            group,
            key=lambda e: e[1] if not src.repo.startswith("shared/") else hashlib.sha256(e[0].encode()).hexdigest(),
        )[: cap or None]
    return [Item(src.repo, path, blob) for path, blob, _ in sorted(keep)]


def _synset_folder(p: Path) -> str:
    """The class of a shared file: its folder plus the ImageNet synset in its name, if any."""
    match = re.search(r"n\d{8}", p.name)
    return f"{p.parent.name}/{match.group(0)}" if match else p.parent.name


def blobs(src: Source, items: list[Item], mirror: Path) -> Iterator[tuple[Item, bytes]]:
    """Each item's bytes: from `git cat-file --batch` (one process per repository) or the file."""
    if src.repo.startswith("shared/"):
        for it in items:
            yield it, Path(it.blob).read_bytes()
        return
    proc = subprocess.Popen(
        ["git", "--git-dir", str(git_dir(mirror, src.repo)), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for it in items:
            proc.stdin.write(f"{it.blob}\n".encode())
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) < 3:  # "<id> missing": a blob the snapshot lacks counts as unreadable
                yield it, b""
                continue
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)
            yield it, data
    finally:
        proc.stdin.close()
        proc.wait()


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of the grey picture (9x8): equal for resized or recompressed copies."""
    grey = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def square(rgb: np.ndarray, side: int) -> np.ndarray:
    """Short side resized to ``side`` (area filter when shrinking), centre crop."""
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(rgb, (max(side, round(w * scale)), max(side, round(h * scale))), interpolation=interp)
    h, w = rgb.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def flatness(rgb: np.ndarray) -> float:
    """Share of pixels in the 8 most common exact colours: high for drawings, logos and objects cut
    out onto a flat background (whose pixels repeat exactly), low for photographs, whose noise and
    shading make exact repeats rare (a sky's gradient included)."""
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    _, counts = np.unique(codes, return_counts=True)
    return float(np.sort(counts)[-8:].sum() / codes.size)


def decode(data: bytes) -> dict | None:
    """Decode one file; None when it does not decode or is too small."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None or min(bgr.shape[:2]) < MIN_SIDE:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    low = square(rgb, LOW_SIDE)
    h, w = rgb.shape[:2]
    high = square(rgb, HIGH_SIDE) if min(h, w) >= MIN_HIGH_SIDE else None
    sat = float(cv2.cvtColor(low, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0)
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "width": w,
        "height": h,
        "dhash": dhash(rgb),
        "saturation": sat,
        "flatness": flatness(low),
        "low": low,
        "high": high,
    }


def guard_hashes(shared_data: Path) -> np.ndarray:
    """Difference hashes of every held-out picture and every frame of the video-tune clips."""
    hashes = []
    for p in sorted((shared_data / "val").rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            bgr = cv2.imread(str(p))
            if bgr is not None:
                hashes.append(dhash(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    for clip in sorted((shared_data / "video-tune").glob("*.mp4")):
        cap = cv2.VideoCapture(str(clip))
        ok, frame = cap.read()
        while ok:
            hashes.append(dhash(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
            ok, frame = cap.read()
        cap.release()
    return np.array(hashes, dtype=np.uint64)


def near_guard(h: int, guard: np.ndarray) -> bool:
    return bool(len(guard)) and int(np.bitwise_count(guard ^ np.uint64(h)).min()) <= GUARD_BITS


def _decode_job(args: tuple[Item, bytes]) -> tuple[Item, dict | None]:
    item, data = args
    return item, decode(data)


@dataclass
class Packing:
    """What a build (or an append) has packed so far: the open array and manifest files, the
    hashes that keep duplicates out, and the counts per source."""

    low_fh: BinaryIO
    high_fh: BinaryIO
    manifest: Any  # csv writer
    guard: np.ndarray
    holdout_every: int
    n_low: int = 0
    n_high: int = 0
    seen_sha: set[str] = field(default_factory=set)
    seen_hash: set[int] = field(default_factory=set)
    # Appends only (None in a full build): difference hashes of the 64 px pictures already packed,
    # compared with the same hash of each new picture (an existing corpus keeps no full pictures).
    seen_low_hash: set[int] | None = None
    shas: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def pack_source(src: Source, items: list[Item], decoded: Iterator[tuple[Item, dict | None]], pk: Packing) -> None:
    """Append one source's pictures to the arrays and the manifest, in the order listed."""
    c = pk.counts.setdefault(
        src.repo,
        {
            "listed": len(items),
            "packed": 0,
            "high": 0,
            "duplicate": 0,
            "held_out_lookalike": 0,
            "unreadable": 0,
            "holdout": 0,
        },
    )
    for item, rec in decoded:
        if rec is None:
            c["unreadable"] += 1
            continue
        low_hash = dhash(rec["low"]) if pk.seen_low_hash is not None else None
        if rec["sha256"] in pk.seen_sha or rec["dhash"] in pk.seen_hash or low_hash in (pk.seen_low_hash or ()):
            c["duplicate"] += 1
            continue
        if near_guard(rec["dhash"], pk.guard):
            c["held_out_lookalike"] += 1
            continue
        pk.seen_sha.add(rec["sha256"])
        pk.seen_hash.add(rec["dhash"])
        if pk.seen_low_hash is not None:
            pk.seen_low_hash.add(low_hash)
        holdout = src.holdout and rec["high"] is not None and int(rec["sha256"][:8], 16) % pk.holdout_every == 0
        pk.low_fh.write(np.ascontiguousarray(rec["low"]).tobytes())
        high_row = -1
        if rec["high"] is not None:
            pk.high_fh.write(np.ascontiguousarray(rec["high"]).tobytes())
            high_row, pk.n_high = pk.n_high, pk.n_high + 1
            c["high"] += 1
        pk.manifest.writerow(
            [
                src.repo,
                item.path,
                rec["sha256"],
                rec["bytes"],
                rec["width"],
                rec["height"],
                f"{rec['saturation']:.4f}",
                f"{rec['flatness']:.4f}",
                int(holdout),
                pk.n_low,
                high_row,
            ]
        )
        pk.n_low += 1
        c["packed"] += 1
        c["holdout"] += int(holdout)
        pk.shas.append(rec["sha256"])


def source_meta(src: Source, counts: dict[str, int], appended: bool = False) -> dict:
    meta = {"repo": src.repo, "commit": src.commit, "folders": list(src.folders), "terms": src.terms, **counts}
    return {**meta, "appended": True} if appended else meta


def corpus_meta(pk: Packing, sources: list[dict]) -> dict:
    return {
        "format": FORMAT,
        "low_side": LOW_SIDE,
        "high_side": HIGH_SIDE,
        "min_high_side": MIN_HIGH_SIDE,
        "low_count": pk.n_low,
        "high_count": pk.n_high,
        "fingerprint": manifest_fingerprint(pk.shas),
        "sources": sources,
    }


def write_meta(path: Path, meta: dict) -> None:
    atomic_write(path, lambda fh: fh.write((json.dumps(meta, indent=1) + "\n").encode()), overwrite=True)


def build(sources: list[Source], args: argparse.Namespace, guard: np.ndarray) -> int:
    """A whole corpus from scratch into args.out; the files appear when complete."""
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = {k: args.out / f"{k}.partial" for k in ("low", "high", "manifest")}
    t0 = time.time()
    with (
        tmp["low"].open("wb") as low_fh,
        tmp["high"].open("wb") as high_fh,
        tmp["manifest"].open("w", newline="") as man_fh,
        ProcessPoolExecutor(args.workers, mp_context=SPAWN) as pool,
    ):
        man = csv.writer(man_fh, delimiter="\t", lineterminator="\n")
        man.writerow(MANIFEST_COLUMNS)
        pk = Packing(low_fh, high_fh, man, guard, args.holdout_every)
        for src in sources:
            items = list_items(src, args.mirror, args.shared / "train")
            pack_source(src, items, pool.map(_decode_job, blobs(src, items, args.mirror), chunksize=32), pk)
            print(f"{src.repo}: {pk.counts[src.repo]} ({time.time() - t0:.0f} s)", flush=True)
    meta = corpus_meta(pk, [source_meta(s, pk.counts[s.repo]) for s in sources])
    os.replace(tmp["low"], args.out / "low.u8")
    os.replace(tmp["high"], args.out / "high.u8")
    os.replace(tmp["manifest"], args.out / "manifest.tsv")
    write_meta(args.out / "corpus.json", meta)
    print(
        f"packed {pk.n_low} pictures ({pk.n_high} at {HIGH_SIDE} px) -> {args.out}; fingerprint {meta['fingerprint']}"
    )
    return 0


def append(tsv: Path, args: argparse.Namespace, guard: np.ndarray) -> int:
    """Add the sources of ``tsv`` to the end of an existing corpus, training only (none held out),
    so every row already packed keeps its number and the holdout stays the same pictures.

    New pictures are kept out when they repeat an existing one: the same sha256, or the same
    difference hash of the 64 px picture. Safe to run again: sources already appended are skipped,
    and an append interrupted before corpus.json was rewritten is cut back first (corpus.json is
    written last, so it always describes a complete corpus)."""
    meta_path = args.out / "corpus.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: no corpus to append to at {args.out} ({exc}): build it first") from None
    if meta.get("format") != FORMAT:
        raise SystemExit(f"error: {meta_path} is not a {FORMAT!r} corpus")
    have = {s["repo"] for s in meta["sources"]}
    sources = [replace(s, holdout=False) for s in read_sources(tsv)]
    todo = [s for s in sources if s.repo not in have]
    for s in sources:
        if s.repo in have:
            print(f"{s.repo}: already in the corpus, skipped", flush=True)
    if not todo:
        print(f"nothing to append; fingerprint {meta['fingerprint']}")
        return 0
    n_low, n_high = int(meta["low_count"]), int(meta["high_count"])
    low_path, high_path, man_path = (args.out / n for n in ("low.u8", "high.u8", "manifest.tsv"))
    # Cut back anything an interrupted append left behind (never grow a short, damaged array).
    for path, size in ((low_path, n_low * LOW_SIDE * LOW_SIDE * 3), (high_path, n_high * HIGH_SIDE * HIGH_SIDE * 3)):
        if not path.is_file() or path.stat().st_size < size:
            raise SystemExit(f"error: {path} is shorter than corpus.json says: rebuild the corpus")
        os.truncate(path, size)
    with man_path.open(newline="") as fh:
        old_rows = [r for r in csv.reader(fh, delimiter="\t")]
    low_col, sha_col = MANIFEST_COLUMNS.index("low"), MANIFEST_COLUMNS.index("sha256")
    header, old_rows = old_rows[0], [r for r in old_rows[1:] if int(r[low_col]) < n_low]
    if len(old_rows) != n_low:
        raise SystemExit(f"error: {man_path} lists {len(old_rows)} pictures, corpus.json {n_low}: rebuild the corpus")
    low = np.memmap(low_path, dtype=np.uint8, mode="r", shape=(n_low, LOW_SIDE, LOW_SIDE, 3))
    t0 = time.time()
    seen_low_hash = {dhash(low[i]) for i in range(n_low)}
    print(f"{n_low} packed pictures hashed ({time.time() - t0:.0f} s)", flush=True)
    tmp_man = args.out / "manifest.partial"
    with (
        low_path.open("ab") as low_fh,
        high_path.open("ab") as high_fh,
        tmp_man.open("w", newline="") as man_fh,
        ProcessPoolExecutor(args.workers, mp_context=SPAWN) as pool,
    ):
        man = csv.writer(man_fh, delimiter="\t", lineterminator="\n")
        man.writerow(header)
        man.writerows(old_rows)
        pk = Packing(low_fh, high_fh, man, guard, args.holdout_every, n_low, n_high)
        pk.shas = [r[sha_col] for r in old_rows]
        pk.seen_sha = set(pk.shas)
        pk.seen_low_hash = seen_low_hash
        for src in todo:
            items = list_items(src, args.mirror, args.shared / "train")
            pack_source(src, items, pool.map(_decode_job, blobs(src, items, args.mirror), chunksize=32), pk)
            print(f"{src.repo}: {pk.counts[src.repo]} ({time.time() - t0:.0f} s)", flush=True)
    os.replace(tmp_man, man_path)
    new = corpus_meta(pk, meta["sources"] + [source_meta(s, pk.counts[s.repo], appended=True) for s in todo])
    write_meta(meta_path, new)
    print(
        f"appended {pk.n_low - n_low} pictures ({pk.n_high - n_high} at {HIGH_SIDE} px) -> {args.out}; "
        f"fingerprint {new['fingerprint']}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path(".cache/corpus-v3"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--holdout-every",
        type=int,
        default=HOLDOUT_MODULUS,
        help="hold out 1 picture in N of the repositories (by sha256)",
    )
    ap.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=None,
        help="more sources in SOURCES.tsv's format, none held out (default: pipelines/corpus-extra-sources.tsv, v2's "
        "extra photos)",
    )
    ap.add_argument(
        "--append",
        type=Path,
        default=None,
        metavar="TSV",
        help="add these sources (SOURCES.tsv's format) to the end of the existing corpus in --out, for training "
        "only; rows already packed keep their numbers",
    )
    args = ap.parse_args()
    guard = guard_hashes(args.shared)
    print(f"{len(guard)} held-out hashes (BSDS500 and video-tune frames)", flush=True)
    if args.append is not None:
        return append(args.append, args, guard)
    sources = [
        Source(f"shared/{f}", "", (), (), "see ../shared/data/README.md", False)
        for f in SHARED_FOLDERS
        if (args.shared / "train" / f).is_dir()
    ]
    for extra in args.extra if args.extra is not None else [Path(__file__).with_name("corpus-extra-sources.tsv")]:
        sources += [replace(s, holdout=False) for s in read_sources(extra)]
    sources += read_sources(args.shared / "SOURCES.tsv")
    return build(sources, args, guard)


if __name__ == "__main__":
    sys.exit(main())
