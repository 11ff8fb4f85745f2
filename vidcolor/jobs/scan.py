"""Find the work in an archive: walk the sources, tell videos and images by content, map outputs.

Detection never trusts the extension alone: a file is an image when Pillow identifies it, a video
when its first bytes carry a container signature (or its extension names a video format) and
PyAV opens it and decodes a picture; an extension-less file is still probed. A file that looks
like a video container but does not open (a truncated copy, say) stays a video item, so it is
tried, fails and is reported rather than silently skipped.

Output layout: one source folder is mirrored into DST; several sources (folders or files) each
land under DST/<their name>. Videos become ``.mp4``/``.mkv`` (the recipe's container), images keep
their format and name. Two sources mapping to one output (``a.avi`` and ``a.mp4``) are told apart
by keeping the source's full name (``a.avi.mp4``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from vidcolor.errors import InputError
from vidcolor.studio.naming import is_choices_folder

STATE_DIR = ".vidcolor"

# Pillow formats the image writer (vidcolor.media.images) writes back in the same format; MPO
# (a camera JPEG with extra pictures) comes back as a plain JPEG.
IMAGE_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP", "MPO"}
# Pillow identifies these but they are video (MPEG elementary streams, FLI/FLC animations).
PILLOW_VIDEO_FORMATS = {"MPEG", "FLI"}
VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".mts",
    ".m2ts", ".vob", ".mxf", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".3g2", ".dv", ".y4m", ".mj2",
    ".rm", ".f4v", ".divx", ".nut",
}  # fmt: skip
# PyAV formats that mean "a still picture", never a film.
STILL_DEMUXERS = ("image2", "_pipe", "tty", "lavfi", "gif")
ISO_BRANDS_STILL = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}


@dataclass(frozen=True)
class MediaItem:
    key: str  # output path relative to DST (posix): the item's identity across runs
    src: Path
    kind: str  # "video" | "image"
    expected_frames: int  # for progress only (1 for an image, 0 when a film's length is unknown)
    note: str = ""  # what detection noticed (e.g. the probe error of a damaged video)


@dataclass(frozen=True)
class Skipped:
    src: Path
    reason: str


@dataclass
class ScanResult:
    items: list[MediaItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def video_signature(head: bytes) -> bool:
    """Container signatures of film formats (first bytes of the file)."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return not (head[4:8] == b"ftyp" and head[8:12] in ISO_BRANDS_STILL)
    return (
        head.startswith(b"\x1a\x45\xdf\xa3")  # EBML: Matroska, WebM
        or (head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"))
        or head.startswith(b"\x00\x00\x01\xba")  # MPEG program stream
        or head.startswith(b"\x00\x00\x01\xb3")  # MPEG video elementary stream
        or head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")  # ASF / WMV
        or head.startswith(b"\x06\x0e\x2b\x34")  # MXF
        or head.startswith(b"FLV")
        or head.startswith(b"OggS")  # Theora or just audio: the probe decides
        or head.startswith(b"YUV4MPEG2")
        or head.startswith(b".RMF")
        or head.startswith(b"nut/multimedia")
        or (len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47)  # MPEG-TS
    )


def image_format(path: Path) -> str | None:
    """Pillow's name for the file's format, or None when Pillow does not recognise it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    except Exception:  # a Pillow plugin choking on a non-image file is "not an image"
        return None


def probe_video(path: Path) -> tuple[int, str]:
    """(estimated frames, "") for a film PyAV opens and decodes; raises InputError otherwise."""
    from vidcolor.media.probe import probe

    info = probe(path)
    if any(tag in info.format for tag in STILL_DEMUXERS):
        raise InputError(f"{path}: a still picture ({info.format}), not a film")
    return info.video.estimated_frames or 0, ""


def image_output_name(name: str, fmt: str) -> str:
    """Keep the name when its extension already means ``fmt``; else add the format's extension."""
    from PIL import Image

    fmt = "JPEG" if fmt == "MPO" else fmt
    extensions = Image.registered_extensions()
    suffix = PurePosixPath(name).suffix.lower()
    if extensions.get(suffix) == fmt:
        return name
    canonical = {"JPEG": ".jpg", "TIFF": ".tif", "JPEG2000": ".jp2"}.get(fmt)
    if canonical is None:
        canonical = next((ext for ext, f in extensions.items() if f == fmt), ".png")
    return name + canonical


@dataclass(frozen=True)
class Detected:
    """What content detection concluded about one file (cacheable: it depends on the bytes only)."""

    kind: str  # "video" | "image" | "" (not media: see reason)
    image_name: str = ""  # an image's output file name (its extension follows its format)
    frames: int = 0
    note: str = ""
    reason: str = ""


class DetectionCache(Protocol):
    """Remembers detections by (path, size, mtime) so a resumed scan re-probes nothing."""

    def lookup(self, path: str, size: int, mtime_ns: int) -> Detected | None: ...

    def remember(self, path: str, size: int, mtime_ns: int, detected: Detected) -> None: ...


def detect(path: Path, size: int) -> Detected:
    """Decide by content whether ``path`` is a film, a photo or neither."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return Detected("", reason=f"cannot be read: {exc.strerror or exc}")
    if size == 0:
        return Detected("", reason="empty file")
    fmt = image_format(path)
    if fmt is not None and fmt not in PILLOW_VIDEO_FORMATS:
        if fmt not in IMAGE_FORMATS:
            return Detected("", reason=f"{fmt} image: not supported (JPEG, PNG, TIFF, WebP)")
        return Detected("image", image_output_name(path.name, fmt), 1)
    looks_video = video_signature(head) or path.suffix.lower() in VIDEO_EXTENSIONS
    try:
        frames, note = probe_video(path)
    except InputError as exc:
        if not looks_video:
            return Detected("", reason="not an image or a video")
        # A film container that does not open: keep it, it fails visibly and is reported.
        frames, note = 0, str(exc)
    except Exception as exc:  # PyAV on an odd file must not stop the scan
        if not looks_video:
            return Detected("", reason="not an image or a video")
        frames, note = 0, f"{type(exc).__name__}: {exc}"
    if note and "has no video stream" in note:
        return Detected("", reason="no video stream (audio only?)")
    return Detected("video", frames=frames, note=note)


def classify(
    path: Path, container: str, cache: DetectionCache | None = None
) -> tuple[MediaItem | None, Skipped | None, str]:
    """Look at one file: (item with a provisional key, None, output name) or (None, skip, "")."""
    try:
        st = path.stat()
    except OSError as exc:
        return None, Skipped(path, f"cannot be read: {exc.strerror or exc}"), ""
    found = cache.lookup(str(path), st.st_size, st.st_mtime_ns) if cache is not None else None
    if found is None:
        found = detect(path, st.st_size)
        if cache is not None:
            cache.remember(str(path), st.st_size, st.st_mtime_ns, found)
    if found.kind == "image":
        return MediaItem("", path, "image", 1), None, found.image_name
    if found.kind == "video":
        out_name = (
            str(PurePosixPath(path.name).with_suffix(f".{container}")) if path.suffix else f"{path.name}.{container}"
        )
        return MediaItem("", path, "video", found.frames, found.note), None, out_name
    return None, Skipped(path, found.reason), ""


def walk_files(root: Path, exclude: set[Path], skipped: list[Skipped] | None = None) -> list[Path]:
    """Regular files under ``root`` in a stable order, leaving out excluded folders (DST) and the
    studios' choices folders (``film.studio/``).

    What is not processed is listed in ``skipped`` with its reason rather than silently passed
    over: dangling symbolic links, links to folders (not followed), FIFOs, sockets, devices."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skipped is not None:
            skipped.extend(
                Skipped(here / d, "symbolic link to a folder (not followed)")
                for d in sorted(dirnames)
                if (here / d).is_symlink()
            )
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != STATE_DIR
            and not is_choices_folder(d)  # a studio's hints and references, not pictures to colour
            and not (here / d).is_symlink()
            and (here / d).resolve() not in exclude
        )
        for name in sorted(filenames):
            path = here / name
            if path.is_file():
                found.append(path)
            elif skipped is not None:
                dangling = path.is_symlink() and not path.exists()
                skipped.append(Skipped(path, "dangling symbolic link" if dangling else "not a regular file"))
    return found


def scan_sources(
    sources: list[Path],
    dst: Path,
    container: str = "mp4",
    cache: DetectionCache | None = None,
    exclude: list[Path] | None = None,
) -> ScanResult:
    """Every media file under ``sources`` with its output key; everything else in ``skipped``.
    Folders in ``exclude`` (and DST) are not searched."""
    dst = dst.resolve()
    skip = {dst, *(p.resolve() for p in exclude or [])}
    result = ScanResult()
    if not sources:
        raise InputError("no source given")
    prefixed = len(sources) > 1
    names_seen: dict[str, Path] = {}
    planned: list[tuple[MediaItem, PurePosixPath, PurePosixPath]] = []  # item, source rel, output rel
    for source in sources:
        if not source.exists():
            raise InputError(f"{source}: no such file or folder")
        resolved = source.resolve()
        if resolved == dst:
            raise InputError(f"{source}: the destination must not be the source folder")
        if prefixed:
            if source.name in names_seen:
                raise InputError(f"{source} and {names_seen[source.name]} would both land in DST/{source.name}")
            names_seen[source.name] = source
        base = PurePosixPath(source.name) if prefixed else PurePosixPath()
        if source.is_dir():
            files = [
                (p, base / PurePosixPath(p.relative_to(source).as_posix()))
                for p in walk_files(source, skip, result.skipped)
            ]
        else:
            files = [(source, PurePosixPath(source.name))]
        for path, rel in files:
            item, skipped, out_name = classify(path, container, cache)
            if skipped is not None:
                result.skipped.append(skipped)
            elif item is not None:
                planned.append((item, rel, rel.parent / out_name))
    result.items = assign_keys(planned)
    sources_resolved = {item.src.resolve() for item in result.items}
    for item in result.items:
        if (dst / item.key).resolve() in sources_resolved:
            raise InputError(f"{item.src}: its output {dst / item.key} would overwrite a source file")
    return result


def assign_keys(planned: list[tuple[MediaItem, PurePosixPath, PurePosixPath]]) -> list[MediaItem]:
    """Give each item its output path; colliding outputs keep their source's full name."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, out) in enumerate(planned):
        groups[str(out).casefold()].append(i)  # case-insensitive: DST may be on such a filesystem
    keys: list[str] = [str(out) for _, _, out in planned]
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:
            item, rel, out = planned[i]
            if rel != out:  # the one already named like its output keeps the name
                keys[i] = str(rel.parent / (rel.name + out.suffix))
    if len({k.casefold() for k in keys}) != len(keys):
        dupes = sorted({k for k in keys if sum(x.casefold() == k.casefold() for x in keys) > 1})
        raise InputError(f"several sources map to the same output: {', '.join(dupes[:3])}")
    return [
        MediaItem(key, item.src, item.kind, item.expected_frames, item.note) for key, (item, _, _) in zip(keys, planned)
    ]
