"""The still-image job: find pictures, colorize them in batches, write them beside their names.

The model sees only the picture's luma Y' (BT.601) at render size and predicts chroma (CbCr).
The chroma is upsampled to full size and composed with the ORIGINAL luma: detail, grain and
exposure of the output are the input's, to within one step of the output's bit depth. A picture
that already has colour is recoloured from its luminance. Alpha is carried over untouched.

Library API (used by the CLI and the batch engine; it never prints):
- ``collect_images(inputs)``: files, folders (recursive) and glob patterns -> (source, relative output).
- ``plan_outputs(pairs, out_dir, overwrite)``: (source, destination), refusing clobbers up front.
- ``colorize_image_file(src, dst, colorizer)``: one picture; raises typed errors.
- ``colorize_images(jobs, colorizer)``: many pictures, batched by render size; yields an
  ``ImageResult`` per picture, failures included, and never stops on one bad file.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from vidcolor.colorizer import Colorizer
from vidcolor.compose import compose_image
from vidcolor.errors import InputError, OutputError, VidcolorError
from vidcolor.hints import HintSource, hint_planes
from vidcolor.media.images import IMAGE_SUFFIXES, StillImage, read_image, write_image
from vidcolor.media.outfile import is_input

# Decoded pictures waiting for a full batch hold their full-size luma (4 bytes a pixel): past this
# many pixels the waiting batch is colorized at once rather than grown.
PENDING_PIXELS = 64_000_000
MATRIX = "bt601"  # stills carry no matrix; BT.601 is what a B&W print of a colour scene approximates
_MAGIC = set("*?[")


@dataclass(frozen=True)
class ImageResult:
    source: Path
    output: Path
    ok: bool
    error: str | None = None
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    format: str = ""
    alpha: bool = False
    recoloured: bool = False  # the input had colour and was recoloured from its luminance
    orientation: int = 1  # EXIF orientation applied to make the output upright
    render_size: tuple[int, int] | None = None
    hinted_pixels: int = 0  # pixels of the picture a person gave a colour for

    def to_dict(self) -> dict:
        d = asdict(self)
        d["source"], d["output"] = str(self.source), str(self.output)
        return d


# ------------------------------------------------------------------------------------ inputs


def _has_magic(part: str) -> bool:
    return any(c in _MAGIC for c in part)


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard: outputs are named from there."""
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts[:-1]:
        if _has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def _walk(folder: Path, exclude: frozenset[Path] = frozenset()) -> list[Path]:
    """Image files under ``folder`` by suffix, sorted; hidden files and folders skipped
    (``.DS_Store``, AppleDouble ``._x.jpg``, our own ``.partial`` temp files), and so are the
    folders in ``exclude`` (an output folder inside an input folder)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() not in exclude)
        found += [
            Path(root) / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        ]
    return found


def collect_images(inputs: list[str], exclude: Iterable[Path] = ()) -> list[tuple[Path, Path]]:
    """Expand files, folders and glob patterns into (source, relative output path) pairs.

    A file keeps its name; a folder's pictures (found by suffix, recursively) keep their path
    relative to the folder; a glob's matches keep theirs relative to the pattern's fixed leading
    folders. Files named directly or matched by a glob are judged by content later, whatever their
    suffix. InputError for a path that does not exist, a glob matching nothing, no picture at all,
    or two sources that would share an output name. Folders in ``exclude`` (give the output
    folder) are not searched, so outputs of an earlier run are not taken as inputs.
    """
    skip = frozenset(Path(p).resolve() for p in exclude)
    pairs: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    by_rel: dict[Path, Path] = {}

    def add(src: Path, rel: Path) -> None:
        # '..' in a glob ('*/../*.jpg') must not lead the output out of the output folder.
        rel = Path(os.path.normpath(rel))
        if rel.is_absolute() or rel.parts[:1] == ("..",):
            raise InputError(
                f"{src}: its output name {rel} would leave the output folder; give a pattern without '..' after a "
                "wildcard"
            )
        key = src.resolve()
        if key in seen:
            return
        if rel in by_rel:
            raise InputError(f"{by_rel[rel]} and {src} would both be written to {rel}; colorize them in separate runs")
        seen.add(key)
        by_rel[rel] = src
        pairs.append((src, rel))

    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            for f in _walk(path, skip):
                add(f, f.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif _has_magic(arg):
            base = _glob_base(arg)
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{arg}: no file matches this pattern")
            for m in matches:
                if m.is_dir():
                    for f in _walk(m, skip):
                        add(f, f.relative_to(base))
                elif m.is_file():
                    add(m, m.relative_to(base))
        else:
            raise InputError(f"{arg}: no such file or folder")
    if not pairs:
        raise InputError("no picture found in " + ", ".join(inputs) + " (JPEG, PNG, TIFF, WebP)")
    return pairs


def plan_outputs(pairs: Iterable[tuple[Path, Path]], out_dir: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """(source, relative) -> (source, destination under ``out_dir``), checked before any work.

    OutputError when a destination is one of the inputs (even with ``overwrite``), is a folder,
    or exists already without ``overwrite``.
    """
    pairs = list(pairs)
    sources = {src.resolve() for src, _ in pairs}
    jobs: list[tuple[Path, Path]] = []
    existing: list[Path] = []
    root = out_dir.resolve()
    for src, rel in pairs:
        dst = out_dir / rel
        if not dst.resolve().is_relative_to(root):
            raise OutputError(f"{dst} lies outside the output folder {out_dir}")
        if dst.resolve() in sources:
            raise OutputError(f"{dst} would overwrite an input picture; choose another output folder")
        if dst.is_dir():
            raise OutputError(f"{dst} is a folder; cannot write a picture there")
        if dst.exists() and not overwrite:
            existing.append(dst)
        jobs.append((src, dst))
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]} already exists{more}; use --overwrite to replace")
    return jobs


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    if is_input(dst, [src]):
        raise OutputError(f"{dst} is the input picture; an input is never overwritten")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst} already exists; use --overwrite to replace")


# ------------------------------------------------------------------------------------- jobs


@dataclass
class _Loaded:
    source: Path
    output: Path
    image: StillImage
    small: torch.Tensor  # (1,1,h,w) luma at render size on the model's device


def _result(item: _Loaded) -> ImageResult:
    img = item.image
    return ImageResult(
        source=item.source,
        output=item.output,
        ok=True,
        width=img.width,
        height=img.height,
        bit_depth=img.bit_depth,
        format=img.meta.format,
        alpha=img.alpha is not None,
        recoloured=img.colour,
        orientation=img.orientation,
        render_size=(int(item.small.shape[-2]), int(item.small.shape[-1])),
    )


def _load(src: Path, dst: Path, colorizer: Colorizer, overwrite: bool) -> _Loaded:
    check_output(src, dst, overwrite)
    image = read_image(src)
    small = colorizer.prepare(torch.from_numpy(image.luma)[None, None])
    return _Loaded(src, dst, image, small)


def _finish(item: _Loaded, chroma_small: torch.Tensor, overwrite: bool) -> ImageResult:
    luma = torch.from_numpy(item.image.luma)[None, None].to(chroma_small.device)
    rgb = compose_image(luma, chroma_small, item.image.bit_depth, MATRIX)
    write_image(item.output, rgb, item.image.alpha, item.image.meta, overwrite)
    return _result(item)


def _native(item: _Loaded, colorizer: Colorizer) -> bool:
    """Finish this picture by the model's own post-processing? Only an 8-bit one: the
    publishers' code reads 8 bits, so a 16-bit picture is composed with its own luma as usual."""
    return colorizer.native_pictures and item.image.bit_depth == 8


def _finish_native(item: _Loaded, native: torch.Tensor, colorizer: Colorizer, overwrite: bool) -> ImageResult:
    """An 8-bit picture from the model's own output (B=1,C,s,s) by its own post-processing."""
    rgb = colorizer.finish_picture(native, item.image.luma)
    write_image(item.output, rgb, item.image.alpha, item.image.meta, overwrite)
    return _result(item)


def _predict_and_finish(items: list[_Loaded], colorizer: Colorizer, overwrite: bool) -> Iterator[ImageResult]:
    native = [_native(it, colorizer) for it in items]
    groups = [[it for it, n in zip(items, native) if n], [it for it, n in zip(items, native) if not n]]
    for own, group in zip((True, False), groups):
        if not group:
            continue
        small = torch.cat([it.small for it in group])
        out = colorizer.predict_native(small) if own else colorizer.predict(small, MATRIX)
        for i, item in enumerate(group):
            try:
                yield (
                    _finish_native(item, out[i : i + 1], colorizer, overwrite)
                    if own
                    else _finish(item, out[i : i + 1], overwrite)
                )
            except VidcolorError as exc:
                yield ImageResult(item.source, item.output, ok=False, error=str(exc))


def colorize_image_file(
    src: Path, dst: Path, colorizer: Colorizer, overwrite: bool = False, hints: HintSource | None = None
) -> ImageResult:
    """Colorize one picture into ``dst`` (same format and bit depth as ``src``), following a
    person's colour ``hints`` when given (the model must take hints).

    Raises InputError (unreadable, not a picture, hints that do not fit it or a model that takes
    none), OutputError (exists, is the input, cannot be written); nothing is left at ``dst`` on
    failure.
    """
    if hints:
        colorizer.require_hints()
    item = _load(Path(src), Path(dst), colorizer, overwrite)
    planes, hinted = None, 0
    if hints:
        parts = hints.load(item.image.height, item.image.width)
        hinted = sum(len(p) for p in parts)
        planes = hint_planes(parts, (int(item.small.shape[-2]), int(item.small.shape[-1])))
        result = _finish(item, colorizer.predict(item.small, MATRIX, planes), overwrite)
    elif _native(item, colorizer):
        result = _finish_native(item, colorizer.predict_native(item.small), colorizer, overwrite)
    else:
        result = _finish(item, colorizer.predict(item.small, MATRIX), overwrite)
    return replace(result, hinted_pixels=hinted)


def colorize_images(
    jobs: Iterable[tuple[Path, Path]], colorizer: Colorizer, overwrite: bool = False
) -> Iterator[ImageResult]:
    """Colorize many pictures, batching those with the same render size.

    Yields one ImageResult per job (not necessarily in input order); a picture that cannot be
    read or written gives a result with ``ok=False`` and the next one goes on. At most about
    two batches of decoded pictures, and about PENDING_PIXELS of them, are held at once: a
    folder of huge scans goes one picture at a time.
    """
    batch = max(1, colorizer.config.batch_size)
    max_pending = 2 * batch
    pending: dict[tuple[int, int], list[_Loaded]] = {}

    def pending_pixels() -> int:
        return sum(it.image.height * it.image.width for items in pending.values() for it in items)

    def flush(key: tuple[int, int]) -> Iterator[ImageResult]:
        yield from _predict_and_finish(pending.pop(key), colorizer, overwrite)

    for src, dst in jobs:
        src, dst = Path(src), Path(dst)
        try:
            item = _load(src, dst, colorizer, overwrite)
        except VidcolorError as exc:
            yield ImageResult(src, dst, ok=False, error=str(exc))
            continue
        key = (int(item.small.shape[-2]), int(item.small.shape[-1]))
        pending.setdefault(key, []).append(item)
        if len(pending[key]) >= batch:
            yield from flush(key)
        while pending and (sum(len(v) for v in pending.values()) > max_pending or pending_pixels() > PENDING_PIXELS):
            yield from flush(max(pending, key=lambda k: sum(it.image.height * it.image.width for it in pending[k])))
    for key in list(pending):
        yield from flush(key)
