"""Colorization quality on colour photographs: desaturate, colorize, compare with the truth.

Each picture is reduced to its BT.601 luma (rounded to 8 bits, as a grey photograph would be),
colorized exactly as ``vidcolor image`` does (Colorizer with video=False, chroma upsampled, fitted
to the gamut and composed with the original luma) and compared with the colour original. The grey
picture itself (chroma = 0) is scored alongside: a model that cannot beat it adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcolor.color import rgb_to_luma
from vidcolor.colorizer import Colorizer, RenderConfig
from vidcolor.errors import InputError
from vidcolor.images import compose_image
from vidcolor.metrics import colourfulness, mean_ciede2000, psnr
from vidcolor.models.base import ColorModel

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
            "count": len(self.images),
            "mean": self.mean(),
            "images": [asdict(s) for s in self.images],
            "skipped": self.skipped,
        }


def read_rgb(path: Path) -> np.ndarray:
    """An upright (EXIF) 8-bit RGB array; InputError for what is not a readable picture."""
    try:
        with Image.open(path) as img:
            return np.array(ImageOps.exif_transpose(img).convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: not a readable picture ({exc})") from None


def score_image(rgb: np.ndarray, colorizer: Colorizer, path: str = "") -> ImageScore:
    """Scores of one (H,W,3) uint8 colour picture."""
    truth = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    luma = (rgb_to_luma(truth) * 255.0).round() / 255.0
    _, chroma = colorizer.colorize(luma, "bt601")
    pred = torch.from_numpy(compose_image(luma.to(chroma.device), chroma, 8)).permute(2, 0, 1)[None].float() / 255.0
    pred = pred.cpu()
    gray = luma.expand(-1, 3, -1, -1)
    return ImageScore(
        path=path,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        psnr=float(psnr(pred, truth)[0]),
        psnr_gray=float(psnr(gray, truth)[0]),
        ciede2000=float(mean_ciede2000(pred, truth)[0]),
        ciede2000_gray=float(mean_ciede2000(gray, truth)[0]),
        colourfulness=float(colourfulness(pred)[0]),
        colourfulness_truth=float(colourfulness(truth)[0]),
    )


def evaluate_images(
    paths: Sequence[str | Path],
    model: ColorModel,
    render: RenderConfig = RenderConfig(),
    on_image: Callable[[ImageScore | None], None] | None = None,
) -> EvalReport:
    """Score ``model`` on colour pictures; unreadable files are listed in ``skipped``."""
    colorizer = Colorizer(model, render, video=False)
    report = EvalReport(model=model.info.name, render_factor=colorizer.render_factor)
    for p in paths:
        try:
            score = score_image(read_rgb(Path(p)), colorizer, str(p))
        except InputError as exc:
            report.skipped.append(str(exc))
            score = None
        else:
            report.images.append(score)
        if on_image is not None:
            on_image(score)
    return report
