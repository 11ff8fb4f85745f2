"""The README's colour-hints picture: grey | automatic | hints | result | truth, on a sample photo.

``samples/photos/chelsea.png`` is the desaturated ``skimage/data/chelsea.png`` of scikit-image 0.26.0
(samples/README.md); its colour original is read from that wheel (``pip download`` when not given).
Ten points a person might click (fur, eyes, nose, background) take their colour from the original,
as ``vidcolor image --hint X,Y,#RRGGBB`` points, and go through the CLI's code path
(``colorize_image_file`` with a HintSource).

    python benchmarks/hints_sheet.py [--model vidcolor-lite0-cls-v2] [--wheel-dir DIR]

Prints the PSNR of the automatic and the hinted result against the original.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidcolor import metrics
from vidcolor.colorizer import Colorizer
from vidcolor.hints import HintPoint, HintSource
from vidcolor.models.registry import load_model
from vidcolor.settings import RenderConfig
from vidcolor.stills import colorize_image_file

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photos" / "chelsea.png"
ORIGINAL = "skimage/data/chelsea.png"
POINTS = (
    (200, 60),
    (120, 180),
    (330, 200),
    (145, 100),
    (275, 110),
    (225, 205),
    (260, 250),
    (30, 30),
    (430, 150),
    (40, 270),
)


def original_rgb(wheel_dir: Path | None, scratch: Path) -> np.ndarray:
    wheels = sorted((wheel_dir or scratch).glob("scikit_image-0.26.0-*.whl"))
    if not wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(scratch),
                "scikit-image==0.26.0",
            ],
            check=True,
        )
        wheels = sorted(scratch.glob("scikit_image-0.26.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        (scratch / "original.png").write_bytes(z.read(ORIGINAL))
    return np.asarray(Image.open(scratch / "original.png").convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vidcolor-lite0-cls-v2")
    ap.add_argument("--wheel-dir", type=Path, default=None, help="a folder holding the scikit-image 0.26.0 wheel")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "hints_sheet.png")
    args = ap.parse_args()
    grey = Image.open(PHOTO).convert("L")
    colorizer = Colorizer(load_model(args.model), RenderConfig(device="cpu"), video=False)
    with tempfile.TemporaryDirectory() as tmp:
        truth = original_rgb(args.wheel_dir, Path(tmp))
        points = tuple(
            HintPoint(x, y, tuple(int(c) for c in truth[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0).round()))
            for x, y in POINTS
        )
        colorize_image_file(PHOTO, Path(tmp) / "auto.png", colorizer)
        colorize_image_file(PHOTO, Path(tmp) / "hinted.png", colorizer, hints=HintSource(points=points))
        auto = Image.open(Path(tmp) / "auto.png").convert("RGB")
        hinted = Image.open(Path(tmp) / "hinted.png").convert("RGB")
    marks = grey.convert("RGB")
    draw = ImageDraw.Draw(marks)
    for p in points:
        draw.ellipse((p.x - 5, p.y - 5, p.x + 5, p.y + 5), fill=p.rgb, outline=(255, 255, 255), width=2)
    w, h = grey.size
    tiles = (grey.convert("RGB"), auto, marks, hinted, Image.fromarray(truth))
    sheet = Image.new("RGB", (len(tiles) * w + (len(tiles) - 1) * 8, h), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * (w + 8), 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(
        f"{args.out}: {args.model}; PSNR vs the original: grey "
        f"{metrics.psnr_uint8(np.asarray(grey.convert('RGB')), truth):.2f} dB, "
        f"automatic {metrics.psnr_uint8(np.asarray(auto), truth):.2f} dB, {len(points)} hints "
        f"{metrics.psnr_uint8(np.asarray(hinted), truth):.2f} dB"
    )


if __name__ == "__main__":
    main()
