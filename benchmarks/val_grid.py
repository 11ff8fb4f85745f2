"""A picture of the model's validation results: grey input | colorized | truth, one row per photo.

    python benchmarks/val_grid.py [--model default] [--count 8] [--out benchmarks/val_grid.png]

Photos are taken evenly through the sorted held-out validation set (../shared/data/val/bsds500,
never trained on), desaturated (BT.601 luma) and colorized exactly as `vidcolor eval` scores them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import rgb_to_luma
from vidcolor.colorizer import Colorizer
from vidcolor.compose import compose_image
from vidcolor.evaluation.images import read_picture_rgb
from vidcolor.models.registry import load_model
from vidcolor.settings import RenderConfig
from vidcolor.train.data import list_images
from vidcolor.train.samples import grid_image, write_png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/val/bsds500"))
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--height", type=int, default=200, help="row height in the grid (pixels)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/val_grid.png"))
    args = ap.parse_args()
    paths = list_images([args.data])
    picks = [paths[i] for i in np.linspace(0, len(paths) - 1, args.count).round().astype(int)]
    colorizer = Colorizer(load_model(args.model), RenderConfig(device="cpu"), video=False)
    rows = []
    for path in picks:
        truth = torch.from_numpy(read_picture_rgb(path)).permute(2, 0, 1)[None].float() / 255.0
        luma = (rgb_to_luma(truth) * 255.0).round() / 255.0
        _, chroma = colorizer.colorize(luma, "bt601")
        pred = torch.from_numpy(compose_image(luma, chroma.cpu(), 8)).permute(2, 0, 1)[None].float() / 255.0
        size = (args.height, round(truth.shape[-1] * args.height / truth.shape[-2]))
        cells = [
            torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[
                0
            ].clamp(0, 1)
            for t in (luma.expand(-1, 3, -1, -1), pred, truth)
        ]
        rows.append(cells)
    # Photos differ in orientation: pad each row to the widest.
    width = max(sum(c.shape[-1] for c in r) for r in rows)
    for r in rows:
        extra = width - sum(c.shape[-1] for c in r)
        if extra:
            r[-1] = torch.nn.functional.pad(r[-1], (0, extra), value=1.0)
    write_png(grid_image(rows), args.out)
    print(f"{args.out}: {len(rows)} validation photos, grey | {colorizer.model.info.name} | truth")


if __name__ == "__main__":
    main()
