"""A person's colour hints: points (``--hint X,Y,#RRGGBB``) and hint pictures (``--hints PNG``).

A hint says "this pixel has this colour". Only the colour's chroma is used (its CIE a*b*; the
picture's own luminance is kept, as everywhere in vidcolor), which is what a hint model was trained
on: simulated user points that reveal the true ab of small patches (vidcolor.train.hints). The
model runs at render size, so full-resolution hints are pooled onto the render grid: each render
pixel that any hinted pixel falls in gets their mean ab and a mask of 1.

A hint picture is a picture of the same size as the one it guides, transparent except where the
person painted dots or strokes (any image editor's layer exported as PNG). A pixel counts as
painted when its alpha is at least half; soft brush edges below that are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import kornia
import numpy as np
import torch

from vidcolor.color import ab_to_chroma, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.geodesic import geodesic_fill
from vidcolor.media.images import read_guide_picture
from vidcolor.models.generator import AB_SCALE, HINT_CHANNELS
from vidcolor.settings import HintSpread

POINT_PATCH = 3  # a --hint point covers this many render pixels a side (the training patches' scale)
PAINTED_ALPHA = 128  # alpha (of 255) from which a hint picture's pixel counts as painted
_POINT = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*#?([0-9a-fA-F]{6})\s*$")


@dataclass(frozen=True)
class HintPoint:
    x: int  # column, from the left of the upright picture
    y: int  # row, from the top
    rgb: tuple[int, int, int]  # sRGB, 0-255


def parse_hint(text: str) -> HintPoint:
    """``X,Y,#RRGGBB`` -> HintPoint; an InputError naming the expected form otherwise."""
    m = _POINT.match(text)
    if not m:
        raise InputError(
            f"--hint {text!r}: write X,Y,#RRGGBB (pixel column, row and a hex colour, e.g. 120,48,#c0302a)"
        )
    value = int(m.group(3), 16)
    return HintPoint(int(m.group(1)), int(m.group(2)), ((value >> 16) & 255, (value >> 8) & 255, value & 255))


@dataclass(frozen=True)
class Hints:
    """Hinted pixels of one picture at its full (upright) size."""

    height: int
    width: int
    ys: np.ndarray  # (N,) int rows
    xs: np.ndarray  # (N,) int columns
    rgb: np.ndarray  # (N, 3) uint8 sRGB colours
    patch: int = 1  # side, in render pixels, that each hinted pixel covers

    def __len__(self) -> int:
        return int(self.ys.shape[0])


def hints_from_points(points: Sequence[HintPoint], height: int, width: int) -> Hints:
    """Points -> Hints for a ``width`` x ``height`` picture; a point outside it is an InputError."""
    for p in points:
        if not (0 <= p.x < width and 0 <= p.y < height):
            raise InputError(f"--hint {p.x},{p.y}: outside the {width}x{height} picture (x < {width}, y < {height})")
    ys = np.array([p.y for p in points], dtype=np.int64)
    xs = np.array([p.x for p in points], dtype=np.int64)
    rgb = np.array([p.rgb for p in points], dtype=np.uint8).reshape(-1, 3)
    return Hints(height, width, ys, xs, rgb, patch=POINT_PATCH)


def read_hint_picture(path: Path, height: int, width: int) -> Hints:
    """A hint picture (transparent except for painted pixels) -> Hints; it must be ``width`` x ``height``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such hints picture")
    rgba, has_alpha = read_guide_picture(
        path, (width, height), "RGBA", "hints picture", f"the picture it guides is {width}x{height} (upright)"
    )
    if not has_alpha:
        raise InputError(
            f"{path}: hints picture has no transparency; paint the hints on a transparent layer and save it as PNG"
        )
    ys, xs = np.nonzero(rgba[..., 3] >= PAINTED_ALPHA)
    return Hints(height, width, ys.astype(np.int64), xs.astype(np.int64), rgba[ys, xs, :3].copy(), patch=1)


def colour_ab(rgb: np.ndarray) -> torch.Tensor:
    """(N,3) uint8 sRGB -> (N,2) CIE a*b*."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).float().div(255.0).view(-1, 3, 1, 1)
    return rgb_to_lab(t)[:, 1:, 0, 0] if len(t) else torch.zeros(0, 2)


def hint_planes(parts: Sequence[Hints], size: tuple[int, int]) -> torch.Tensor:
    """Hints of one picture (points, painted pixels, or both) -> the model's hint planes (1,3,h,w)
    at render ``size``: a/AB_SCALE, b/AB_SCALE, mask.

    Each hinted pixel lands in the render pixel that covers it (a point: in a POINT_PATCH square
    around it); a render pixel gets the mean ab of all hints that land in it.
    """
    h, w = size
    total = torch.zeros(2, h, w, dtype=torch.float64)
    count = torch.zeros(h, w, dtype=torch.float64)
    for part in parts:
        if not len(part):
            continue
        ab = colour_ab(part.rgb).double()
        ry = np.minimum((part.ys * h) // part.height, h - 1)
        rx = np.minimum((part.xs * w) // part.width, w - 1)
        half = part.patch // 2
        for dy in range(-half, part.patch - half):
            for dx in range(-half, part.patch - half):
                yy = torch.from_numpy(np.clip(ry + dy, 0, h - 1))
                xx = torch.from_numpy(np.clip(rx + dx, 0, w - 1))
                flat = yy * w + xx
                count.view(-1).index_add_(0, flat, torch.ones(len(flat), dtype=torch.float64))
                for c in range(2):
                    total[c].view(-1).index_add_(0, flat, ab[:, c])
    planes = torch.zeros(1, HINT_CHANNELS, h, w)
    hinted = count > 0
    planes[0, :2] = torch.where(hinted, total / count.clamp_min(1.0), 0.0).float() / AB_SCALE
    planes[0, 2] = hinted.float()
    return planes


@dataclass(frozen=True)
class HintSource:
    """What a person gave for one picture: points, a hints picture, or both."""

    points: tuple[HintPoint, ...] = ()
    picture: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.points) or self.picture is not None

    def load(self, height: int, width: int) -> list[Hints]:
        """The hints for a ``width`` x ``height`` (upright) picture; InputError when they do not fit."""
        parts = [hints_from_points(self.points, height, width)] if self.points else []
        if self.picture is not None:
            parts.append(read_hint_picture(self.picture, height, width))
        return parts


_FRAME_NUMBER = re.compile(r"\d+")


def frame_hint_pictures(folder: Path) -> dict[int, Path]:
    """A folder of hint pictures for a film -> {frame index: picture}. Each PNG is named by the
    index of the frame it guides, counted from 0 in decoding order: the first number in its name
    (``120.png``, ``frame-000120.png``). InputError for a missing folder, no PNG, a name without a
    number or two pictures for one frame."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such hints folder")
    found: dict[int, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")):
        m = _FRAME_NUMBER.search(path.stem)
        if m is None:
            raise InputError(f"{path}: a hints picture must be named by its frame index (e.g. 000120.png)")
        index = int(m.group(0))
        if index in found:
            raise InputError(f"{found[index].name} and {path.name} both give hints for frame {index}")
        found[index] = path
    if not found:
        raise InputError(f"{folder}: holds no hints picture (PNG named by frame index, e.g. 000120.png)")
    return found


GUIDE_PASSES = 2  # edge-preserving smoothings of the guide: texture flattened, outlines kept


def smooth_guide(luma: torch.Tensor, colour_sigma: float) -> torch.Tensor:
    """Render luma (B,1,h,w) with texture (brightness changes well under ``colour_sigma``) smoothed
    away and outlines kept (kornia's bilateral filter, 9x9): a hint's reach then follows objects,
    not the grain, weave or foliage inside them."""
    if colour_sigma <= 0:
        return luma
    for _ in range(GUIDE_PASSES):
        luma = kornia.filters.bilateral_blur(luma, 9, colour_sigma, (3.0, 3.0))
    return luma


def spread_hints(
    luma: torch.Tensor,
    chroma: torch.Tensor,
    planes: torch.Tensor,
    matrix: str = "bt601",
    config: HintSpread = HintSpread(),
    automatic: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render-size luma (B,1,h,w), the model's CbCr given the hints (B,2,h,w) and the hint planes
    (B,3,h,w) -> CbCr that takes the hinted colour at the hinted pixels and carries it over the
    region each hint is on, fading with geodesic distance (see HintSpread). ``automatic``: the
    model's CbCr without hints; where given, the model's answer to the hints is kept only as far as
    the hints reach, so a hint never recolours the rest of the picture. Frames without hints come
    back as ``automatic`` (or ``chroma``)."""
    mask = planes[:, 2:3] > 0
    if not bool(mask.any()):
        return chroma if automatic is None else automatic
    target = ab_to_chroma(luma, planes[:, :2].to(chroma.dtype) * AB_SCALE, matrix)
    guide = smooth_guide(luma.to(chroma.dtype), config.smooth)
    correction, distance = geodesic_fill(target - chroma, mask, guide, config.edge, config.rounds)
    # Full inside the hint's region, half at ``reach``, then falling as the 4th power: an outline
    # crossed adds enough distance to end the hint there. 0 where no hint is (infinite distance).
    weight = 1.0 / (1.0 + (distance / config.reach) ** 4)
    base = chroma if automatic is None else automatic + weight * (chroma - automatic)
    return torch.where(mask, target, base + weight * correction)
