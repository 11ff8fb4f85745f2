"""A person's choices for a film, as one input: anchor pictures, each named by the frame it is for.

Two kinds of anchor picture, one naming rule:
- a reference (``--reference``): a full-size colour picture of one frame, its colour imposed there;
- a hints picture (``--hints``): a PNG of the frame's size, transparent except where colour was
  painted; the model colours the frame with those hints.
Either anchors its shot: the temporal stage carries its colour through the shot.

The rule (``frame_index_from_name``), for both kinds: frames are counted from 0 in decoding order;
a folder's ``keyframes.json`` (written by ``vidcolor keyframes``) names its pictures' frames;
otherwise the number after "frame" in the name (``shot0003_frame000120_t4.800s.png`` -> 120),
else the only number in it (``000120.png``, ``120.png``); any other name is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from vidcolor.errors import InputError
from vidcolor.hints import Hints, hint_planes, read_hint_picture
from vidcolor.media.excerpt import FrameRange
from vidcolor.media.plan import OutputPlan
from vidcolor.media.probe import MediaInfo
from vidcolor.media.reader import VideoReader
from vidcolor.video.references import check_references, read_references, thumbnail

PICTURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
HINT_SUFFIXES = frozenset({".png"})  # a hints picture needs an alpha channel
KEYFRAMES_JSON = "keyframes.json"
_FRAME_TAG = re.compile(r"frame[_-]?(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")


def frame_index_from_name(path: Path) -> int:
    """``shot0003_frame000120_t4.800s.png`` -> 120 (the number after "frame"); else the only
    number in the name (``000120.png``); InputError when the name does not say which frame."""
    tagged = _FRAME_TAG.search(path.stem)
    if tagged:
        return int(tagged.group(1))
    numbers = _NUMBER.findall(path.stem)
    if len(numbers) == 1:
        return int(numbers[0])
    raise InputError(
        f"{path}: cannot tell which frame this picture is for; name it by frame index (000120.png or frame000120.png)"
    )


def _from_keyframes_json(folder: Path) -> dict[str, int]:
    """file name -> frame, from the keyframes.json that ``vidcolor keyframes`` wrote (if any)."""
    path = folder / KEYFRAMES_JSON
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
        return {str(shot["file"]): int(shot["keyframe"]) for shot in doc["shots"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a keyframes.json written by `vidcolor keyframes` ({exc.__class__.__name__})"
        ) from None


def anchor_pictures(items: Sequence[Path], kind: str = "reference") -> dict[int, Path]:
    """Folders of anchor pictures, or picture files -> {frame index: picture}, by the module's rule.

    ``kind``: "reference" (any picture format) or "hints" (PNG). In a folder every picture counts
    (hidden files aside). InputError for a missing path, a folder without pictures, a name that
    does not say its frame or two pictures for one frame."""
    suffixes = HINT_SUFFIXES if kind == "hints" else PICTURE_SUFFIXES
    formats = "PNG" if kind == "hints" else "PNG, JPEG, TIFF, BMP or WebP"
    found: dict[int, Path] = {}

    def add(index: int, path: Path) -> None:
        if index in found and found[index] != path:
            raise InputError(f"{found[index]} and {path} are both {kind} pictures for frame {index}")
        found[index] = path

    for item in map(Path, items):
        if item.is_dir():
            listed = _from_keyframes_json(item)
            pictures = sorted(
                p for p in item.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file()
            )
            if not pictures:
                raise InputError(f"{item}: holds no {kind} picture ({formats} named by frame index, e.g. 000120.png)")
            for path in pictures:
                add(listed[path.name] if path.name in listed else frame_index_from_name(path), path)
        elif item.is_file():
            if item.suffix.lower() not in suffixes:
                raise InputError(f"{item}: a {kind} picture must be {formats}")
            add(frame_index_from_name(item), item)
        else:
            raise InputError(f"{item}: no such {kind} file or folder")
    return found


@dataclass(frozen=True)
class AnchorFiles:
    """A film's anchor pictures as given: {frame index: picture} of each kind (``anchor_pictures``)."""

    hints: Mapping[int, Path] = field(default_factory=dict)
    references: Mapping[int, Path] = field(default_factory=dict)

    @classmethod
    def from_paths(cls, hints: Sequence[Path] = (), references: Sequence[Path] = ()) -> AnchorFiles:
        """``--hints`` and ``--reference`` values (folders or files) read by the naming rule."""
        return cls(anchor_pictures(hints, "hints") if hints else {}, anchor_pictures(references) if references else {})

    def __bool__(self) -> bool:
        return bool(self.hints) or bool(self.references)

    def within(self, span: FrameRange) -> AnchorFiles:
        """The anchors on the frames of ``span`` (an excerpt's: ``run --frames``)."""

        def keep(i: int) -> bool:
            return i >= span.start and (span.stop is None or i < span.stop)

        return AnchorFiles(
            {i: p for i, p in self.hints.items() if keep(i)}, {i: p for i, p in self.references.items() if keep(i)}
        )


@dataclass
class FilmAnchors:
    """A film's anchors, read and checked: hints per frame and reference chroma per frame (CbCr at
    the render size, on the model's device)."""

    hints: dict[int, list[Hints]] = field(default_factory=dict)
    references: dict[int, torch.Tensor] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hints) or bool(self.references)

    def hint_planes(self, first: int, luma: torch.Tensor) -> torch.Tensor | None:
        """Hint planes (B,3,h,w) for the frames first..first+B-1 of render ``luma``, or None."""
        n, size = luma.shape[0], (int(luma.shape[-2]), int(luma.shape[-1]))
        hinted = [i for i in range(n) if first + i in self.hints]
        if not hinted:
            return None
        planes = luma.new_zeros(n, 3, *size)
        for i in hinted:
            planes[i] = hint_planes(self.hints[first + i], size)[0].to(planes.device)
        return planes

    def references_for(self, first: int, count: int) -> dict[int, torch.Tensor]:
        """{batch position: reference chroma} for the frames first..first+count-1."""
        return {i - first: c for i, c in self.references.items() if first <= i < first + count}

    def unused_hints(self, frames: int) -> list[int]:
        return sorted(i for i in self.hints if i >= frames)

    def shifted(self, offset: int) -> FilmAnchors:
        """The same anchors with frame ``offset`` as frame 0 (an excerpt's numbering)."""
        if not offset:
            return self
        return FilmAnchors(
            {i - offset: h for i, h in self.hints.items()}, {i - offset: c for i, c in self.references.items()}
        )


def load_anchors(
    src: Path,
    media: MediaInfo,
    plan: OutputPlan,
    render_size: tuple[int, int],
    device: torch.device,
    hints: Mapping[int, Path] | None = None,
    references: Mapping[int, Path] | None = None,
) -> FilmAnchors:
    """Every anchor picture read and checked against the film before any work (one-line errors)."""
    anchors = FilmAnchors()
    if hints:
        anchors.hints = _load_hints(hints, media, plan)
    if references:
        anchors.references = _load_references(src, media, plan, references, render_size, device)
    return anchors


def _load_hints(hints: Mapping[int, Path], media: MediaInfo, plan: OutputPlan) -> dict[int, list[Hints]]:
    total = media.video.frames
    loaded: dict[int, list[Hints]] = {}
    for index, path in sorted(hints.items()):
        if total and index >= total:
            raise InputError(f"{path}: frame {index} is past the film's end ({total} frames, counted from 0)")
        part = read_hint_picture(path, media.video.height, media.video.width)
        # Coordinates hold in the coded frame (padding, where the codec needs it, is at the bottom right).
        loaded[index] = [replace(part, height=plan.height, width=plan.width)]
    return loaded


def _load_references(
    src: Path,
    media: MediaInfo,
    plan: OutputPlan,
    pictures: Mapping[int, Path],
    size: tuple[int, int],
    device: torch.device,
) -> dict[int, torch.Tensor]:
    """Every reference read and checked (size now; luma against its frame by a quick decode up to
    the last reference), then turned into render-size CbCr anchors on ``device``."""
    refs = read_references(
        dict(pictures), media.video.height, media.video.width, plan.matrix, media.video.frames or None
    )
    times: list[float] = []

    def thumbs() -> Iterator[torch.Tensor]:
        with VideoReader(src, media.video, batch_size=16) as reader:
            for batch in reader:
                times.extend(float(p * batch.time_base) for p in batch.pts)
                yield thumbnail(batch.luma)

    scan = thumbs()
    try:
        check_references(refs, scan, times)
    finally:
        scan.close()  # stops the decode as soon as every reference is matched
    return {r.frame: r.chroma(size, (plan.height, plan.width), plan.matrix).to(device) for r in refs}
