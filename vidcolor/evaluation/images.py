"""Colorization quality on colour photographs: desaturate, colorize, compare with the truth.

Each picture is reduced to its BT.601 luma (rounded to 8 bits, as a grey photograph would be),
colorized exactly as ``vidcolor image`` does (Colorizer with video=False, chroma upsampled, fitted
to the gamut and composed with the original luma) and compared with the colour original. The grey
picture itself (chroma = 0) is scored alongside: a model that cannot beat it adds nothing.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcolor.color import rgb_to_luma
from vidcolor.colorizer import Colorizer
from vidcolor.compose import band_rows, compose_bands, quantise_rgb
from vidcolor.errors import InputError
from vidcolor.metrics import mean_ciede2000
from vidcolor.models.base import ColorModel
from vidcolor.settings import RenderConfig

METRICS = ("psnr", "psnr_gray", "ciede2000", "ciede2000_gray", "colourfulness", "colourfulness_truth")


@dataclass(frozen=True)
class ImageScore:
    path: str
    width: int
    height: int
    psnr: float  # dB, RGB, higher is better
    psnr_gray: float
    ciede2000: float  # mean ΔE00, lower is better
    ciede2000_gray: float
    colourfulness: float  # Hasler–Süsstrunk M of the colorized picture
    colourfulness_truth: float


@dataclass
class EvalReport:
    model: str
    render_factor: int
    hint_points: int = 0  # simulated hints per picture (0: automatic colour)
    images: list[ImageScore] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason" of unreadable pictures

    def mean(self) -> dict[str, float]:
        if not self.images:
            return {k: math.nan for k in METRICS}
        return {k: float(np.mean([getattr(s, k) for s in self.images])) for k in METRICS}

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "render_factor": self.render_factor,
            "hint_points": self.hint_points,
            "count": len(self.images),
            "mean": self.mean(),
            "images": [asdict(s) for s in self.images],
            "skipped": self.skipped,
        }


def read_picture_rgb(path: Path) -> np.ndarray:
    """An upright (EXIF) 8-bit RGB array; InputError for what is not a readable picture."""
    try:
        with Image.open(path) as img:
            return np.array(ImageOps.exif_transpose(img).convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: not a readable picture ({exc})") from None


class _Moments:
    """Running sums over bands of one picture: squared error, CIEDE2000, colourfulness moments."""

    def __init__(self) -> None:
        self.values = 0  # RGB samples seen
        self.pixels = 0
        self.sse = 0.0
        self.ciede = 0.0
        self.opp = torch.zeros(4, dtype=torch.float64)  # Σrg, Σyb, Σrg², Σyb² on the 0-255 scale

    def add(self, rgb: torch.Tensor, truth: torch.Tensor) -> None:
        diff = rgb.double() - truth.double()
        self.sse += float((diff * diff).sum())
        self.ciede += float(mean_ciede2000(rgb, truth)[0]) * rgb.shape[-2] * rgb.shape[-1]
        self.values += diff.numel()
        self.pixels += rgb.shape[-2] * rgb.shape[-1]
        self.opp += opponent_sums(rgb)

    def psnr(self) -> float:
        return float(10.0 * math.log10(1.0 / max(self.sse / self.values, 1e-10)))

    def mean_ciede(self) -> float:
        return self.ciede / self.pixels

    def colourfulness(self) -> float:
        return colourfulness_from_sums(self.opp, self.pixels)


def opponent_sums(rgb: torch.Tensor) -> torch.Tensor:
    """Σrg, Σyb, Σrg², Σyb² of (1,3,H,W) RGB in [0,1] on the 0-255 scale (Hasler–Süsstrunk)."""
    x = rgb[0].double() * 255.0
    rg = x[0] - x[1]
    yb = 0.5 * (x[0] + x[1]) - x[2]
    return torch.stack([rg.sum(), yb.sum(), (rg * rg).sum(), (yb * yb).sum()])


def colourfulness_from_sums(sums: torch.Tensor, pixels: int) -> float:
    """Hasler–Süsstrunk M from ``opponent_sums`` added over a picture's bands (equals
    ``metrics.colourfulness`` of the whole picture)."""
    mean_rg, mean_yb = float(sums[0]) / pixels, float(sums[1]) / pixels
    var = max(float(sums[2]) / pixels - mean_rg**2, 0.0) + max(float(sums[3]) / pixels - mean_yb**2, 0.0)
    return math.sqrt(var) + 0.3 * math.sqrt(mean_rg**2 + mean_yb**2)


def _luma_8bit(rgb: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 -> its BT.601 luma rounded to 8 bits, (1,1,H,W) float32, a band at a time."""
    height, width = rgb.shape[:2]
    luma = torch.empty(1, 1, height, width)
    rows = band_rows(width)
    for top in range(0, height, rows):
        band = torch.from_numpy(np.ascontiguousarray(rgb[top : top + rows])).permute(2, 0, 1)[None].float() / 255.0
        luma[..., top : top + rows, :] = (rgb_to_luma(band) * 255.0).round() / 255.0
    return luma


HINT_PATCH = 3  # side of each simulated hint square, in render pixels


def truth_hints(rgb: np.ndarray, size: tuple[int, int], points: int, path: str) -> torch.Tensor:
    """The evaluation's simulated user: ``points`` uniformly random HINT_PATCH² squares of the
    render-size truth (the picture box-filtered to ``size``), each revealing its mean true ab.
    Seeded by the CRC-32 of the file's name, so a picture gets the same points in any order."""
    from vidcolor.train.hints import fixed_point_hints

    small = np.array(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BOX))  # a writable copy
    truth = torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1)[None].float() / 255.0
    return fixed_point_hints(truth, points, HINT_PATCH, zlib.crc32(Path(path).name.encode()))


def score_image(rgb: np.ndarray, colorizer: Colorizer, path: str = "", hint_points: int = 0) -> ImageScore:
    """Scores of one (H,W,3) uint8 colour picture (given ``hint_points`` hints from its truth).

    The picture is composed and scored one band of rows at a time (the sums are exact), so the
    memory beyond the picture itself is bounded, whatever its size.
    """
    luma = _luma_8bit(rgb)
    small = colorizer.prepare(luma)
    hints = truth_hints(rgb, (int(small.shape[-2]), int(small.shape[-1])), hint_points, path) if hint_points else None
    chroma = colorizer.predict(small, "bt601", hints)
    pred, grey, truth_moments = _Moments(), _Moments(), torch.zeros(4, dtype=torch.float64)
    for top, band in compose_bands(luma.to(chroma.device), chroma, "bt601"):
        rows = band.shape[-2]
        composed = torch.from_numpy(quantise_rgb(band, 8)).permute(2, 0, 1)[None].float() / 255.0
        truth = torch.from_numpy(np.ascontiguousarray(rgb[top : top + rows])).permute(2, 0, 1)[None].float() / 255.0
        pred.add(composed, truth)
        grey.add(luma[..., top : top + rows, :].expand(-1, 3, -1, -1), truth)
        truth_moments += opponent_sums(truth)
    return ImageScore(
        path=path,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        psnr=pred.psnr(),
        psnr_gray=grey.psnr(),
        ciede2000=pred.mean_ciede(),
        ciede2000_gray=grey.mean_ciede(),
        colourfulness=pred.colourfulness(),
        colourfulness_truth=colourfulness_from_sums(truth_moments, pred.pixels),
    )


def evaluate_images(
    paths: Sequence[str | Path],
    model: ColorModel,
    render: RenderConfig = RenderConfig(),
    on_image: Callable[[ImageScore | None], None] | None = None,
    hint_points: int = 0,
) -> EvalReport:
    """Score ``model`` on colour pictures (with ``hint_points`` simulated hints each, see
    ``truth_hints``); unreadable files are listed in ``skipped``."""
    colorizer = Colorizer(model, render, video=False)
    if hint_points:
        colorizer.require_hints()
    report = EvalReport(model=model.info.name, render_factor=colorizer.render_factor, hint_points=hint_points)
    for p in paths:
        try:
            score = score_image(read_picture_rgb(Path(p)), colorizer, str(p), hint_points)
        except InputError as exc:
            report.skipped.append(str(exc))
            score = None
        else:
            report.images.append(score)
        if on_image is not None:
            on_image(score)
    return report
