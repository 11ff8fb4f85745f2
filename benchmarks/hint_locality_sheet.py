"""How far ONE colour hint reaches: a sheet of grey | automatic | one hint | where the chroma changed.

Rows: a generated picture of separate grey shapes (two discs of nearly the same darkness, a bright
square, a dark bar, made here) and the three sample photos (samples/README.md: scikit-image's CC0 and
public-domain pictures, desaturated). Each gets one blue point (``vidcolor image --hint X,Y,#2050E0``
through the CLI's code path) on one object; the last column is white where the hinted result's
chroma differs from the automatic one by more than 4 code values (the issue's locality measure).

    python benchmarks/hint_locality_sheet.py [--model default] [--out benchmarks/hint_locality_sheet.png]

Prints, per row, the share of the picture the hint changed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidcolor.colorizer import Colorizer
from vidcolor.hints import HintPoint, HintSource
from vidcolor.models.registry import load_model
from vidcolor.settings import RenderConfig
from vidcolor.stills import colorize_image_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "photos"
BLUE = (0x20, 0x50, 0xE0)
# (picture, the point, what it is on)
ROWS = (
    ("shapes", (60, 60), "the left disc"),
    ("chelsea.png", (230, 40), "the fur of the forehead"),
    ("coffee.jpg", (300, 130), "the coffee"),
    ("rocket.jpg", (330, 250), "the rocket"),
)
HEIGHT = 160


def shapes_picture(path: Path) -> None:
    """The locality test's picture (tests/test_hints.py): separate shapes on a mid-grey ground."""
    h, w = 192, 256
    yy, xx = np.mgrid[0:h, 0:w]
    grey = np.full((h, w), 128, np.uint8)
    grey[(yy - 60) ** 2 + (xx - 60) ** 2 < 35**2] = 60
    grey[(yy - 130) ** 2 + (xx - 150) ** 2 < 30**2] = 66
    grey[(abs(yy - 50) < 28) & (abs(xx - 200) < 28)] = 205
    grey[(abs(yy - 165) < 10) & (abs(xx - 50) < 40)] = 40
    Image.fromarray(grey).save(path)


def chroma(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("YCbCr")).astype(np.float32)[..., 1:]


def fit(img: Image.Image) -> Image.Image:
    return img.resize((round(img.width * HEIGHT / img.height), HEIGHT), Image.Resampling.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("hint_locality_sheet.png"))
    args = ap.parse_args()
    colorizer = Colorizer(load_model(args.model), RenderConfig(), video=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, (x, y), what in ROWS:
            src = work / "shapes.png" if name == "shapes" else SAMPLES / name
            if name == "shapes":
                shapes_picture(src)
            auto, hinted = work / f"auto-{src.stem}.png", work / f"hint-{src.stem}.png"
            colorize_image_file(src, auto, colorizer, overwrite=True)
            colorize_image_file(src, hinted, colorizer, True, HintSource(points=(HintPoint(x, y, BLUE),)))
            changed = np.abs(chroma(hinted) - chroma(auto)).max(-1) > 4
            print(f"{name:12} one point on {what}: {changed.mean():6.1%} of the picture changed")
            grey = Image.open(src).convert("RGB")
            marked = Image.open(hinted).convert("RGB")
            ImageDraw.Draw(marked).ellipse((x - 5, y - 5, x + 5, y + 5), outline=(255, 255, 255), width=2)
            mask = Image.fromarray((changed * 255).astype(np.uint8)).convert("RGB")
            tiles = [fit(grey), fit(Image.open(auto).convert("RGB")), fit(marked), fit(mask)]
            rows.append((tiles, f"{name}: one point on {what}, {changed.mean():.1%} changed"))
    width = max(sum(t.width for t in tiles) + 8 * len(tiles) for tiles, _ in rows)
    sheet = Image.new("RGB", (width, len(rows) * (HEIGHT + 22) + 22), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), "grey | automatic | one blue hint (white ring) | white: chroma changed > 4", fill=(0, 0, 0))
    for r, (tiles, label) in enumerate(rows):
        top, x = 22 + r * (HEIGHT + 22), 0
        draw.text((4, top), label, fill=(0, 0, 0))
        for tile in tiles:
            sheet.paste(tile, (x, top + 16))
            x += tile.width + 8
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
