"""The README's colour-hints picture: grey | automatic | hints | result, on a sample photo.

The hints are a few painted strokes, drawn here in code (so the picture can be rebuilt exactly),
saved as the transparent PNG a person would paint, and given to ``vidcolor image --hints``'s code
path (``colorize_image_file`` with a HintSource).

    python benchmarks/hints_sheet.py [--model vidcolor-lite0-cls-v2-preview] [--out benchmarks/hints_sheet.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidcolor.colorizer import Colorizer, RenderConfig
from vidcolor.hints import HintSource
from vidcolor.images import colorize_image_file
from vidcolor.models.registry import load_model

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photos" / "chelsea.png"
# (colour, width, polyline) in the photo's pixels: ginger fur, a green wall, a blue collar band.
STROKES = (
    ((200, 120, 50), 6, [(150, 150), (200, 170), (240, 200)]),
    ((210, 130, 60), 6, [(260, 90), (290, 120)]),
    ((60, 140, 70), 8, [(20, 30), (60, 40), (90, 25)]),
    ((60, 140, 70), 8, [(400, 40), (430, 90)]),
    ((40, 70, 190), 5, [(250, 250), (290, 255)]),
)


def paint_hints(size: tuple[int, int], path: Path) -> Path:
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for colour, width, points in STROKES:
        draw.line(points, fill=(*colour, 255), width=width, joint="curve")
    layer.save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vidcolor-lite0-cls-v2-preview")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "hints_sheet.png")
    args = ap.parse_args()
    grey = Image.open(PHOTO).convert("L")
    colorizer = Colorizer(load_model(args.model), RenderConfig(device="cpu"), video=False)
    with tempfile.TemporaryDirectory() as tmp:
        hints_png = paint_hints(grey.size, Path(tmp) / "hints.png")
        colorize_image_file(PHOTO, Path(tmp) / "auto.png", colorizer)
        colorize_image_file(PHOTO, Path(tmp) / "hinted.png", colorizer, hints=HintSource(picture=hints_png))
        auto = Image.open(Path(tmp) / "auto.png").convert("RGB")
        hinted = Image.open(Path(tmp) / "hinted.png").convert("RGB")
        overlay = grey.convert("RGB")
        overlay.paste(Image.open(hints_png), (0, 0), Image.open(hints_png))
    w, h = grey.size
    sheet = Image.new("RGB", (4 * w + 30, h), (255, 255, 255))
    for i, tile in enumerate((grey.convert("RGB"), auto, overlay, hinted)):
        sheet.paste(tile, (i * (w + 10), 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    diff = np.abs(np.asarray(hinted.convert("YCbCr"), np.float32) - np.asarray(auto.convert("YCbCr"), np.float32))[..., 1:]
    print(f"{args.out}: {args.model}; mean |ΔCbCr| hinted vs automatic {diff.mean():.2f} code values")


if __name__ == "__main__":
    main()
