"""The v3 issue's holdout figures for any models: PSNR, the low-saturation quartile, blotches.

Pictures: every usable held-out picture of the v3 corpus (pipelines/build_corpus.py: 1 in 64 of the
repositories' pictures by sha256, never trained on; never BSDS500, never a DAVIS validation frame),
192x192 as packed. Each model colours the desaturated picture (BT.601 luma; the model's own
decoding, as it ships) and the result is composed with the true luma. Per model:

- PSNR (RGB) and its gain over grey, on all and on the low-saturation quartile (the quarter of
  pictures whose truth is least colourful: where a model must not invent colour);
- blotches: the share of pixels the model paints strongly (chroma C*ab > 20) where the truth is
  another colour (CIEDE2000 > 20 from it), the issue's measure of red/blue/yellow patches;
- colourfulness against the truth's.

A sheet of the ten pictures with the most blotches of the FIRST model (grey | each model | truth)
goes to ``--sheet``.

    python benchmarks/bench_holdout_colour.py --models vidcolor-lite0-cls-v2 pipelines/checkpoints/v3-resume.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from vidcolor.color import rgb_to_luma, ycbcr_to_rgb
from vidcolor.metrics import blotch_share, colourfulness, psnr
from vidcolor.models.registry import load_model
from vidcolor.train.corpus import CorpusFilter, open_corpus
from vidcolor.train.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32


def held_out(recipe: Path) -> torch.Tensor:
    data = load_recipe(recipe).data
    corpus = open_corpus(ROOT / data.corpus if not Path(data.corpus).is_absolute() else data.corpus)
    _, _, held = corpus.split(CorpusFilter(data.min_saturation, data.max_flatness))
    return torch.from_numpy(np.ascontiguousarray(corpus.high[held])).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def colour(model, luma: torch.Tensor) -> torch.Tensor:
    parts = [model.predict_chroma(luma[i : i + BATCH]) for i in range(0, len(luma), BATCH)]
    return ycbcr_to_rgb(luma, torch.cat(parts)).clamp(0, 1)


def tile(rgb: torch.Tensor) -> Image.Image:
    return Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["vidcolor-lite0-cls-v2"])
    ap.add_argument("--recipe", type=Path, default=ROOT / "pipelines" / "v3.toml", help="names the corpus")
    ap.add_argument("--sheet", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    truth = held_out(args.recipe)
    luma = rgb_to_luma(truth)
    grey = luma.expand(-1, 3, -1, -1)
    grey_psnr = psnr(grey, truth)
    truth_cf = colourfulness(truth)
    low = truth_cf <= truth_cf.quantile(0.25)
    print(f"{len(truth)} held-out corpus pictures; grey {float(grey_psnr.mean()):.2f} dB")
    print("\n| model | PSNR dB | over grey | low-sat quartile over grey | blotches | colourfulness / truth |")
    print("| --- | --- | --- | --- | --- | --- |")
    outputs, blotches = {}, {}
    for spec in args.models:
        model = load_model(spec)
        pred = colour(model, luma)
        p = psnr(pred, truth)
        blotch = blotch_share(pred, truth)
        outputs[spec], blotches[spec] = pred, blotch
        print(
            f"| {spec} | {float(p.mean()):.2f} | {float((p - grey_psnr).mean()):+.2f} | "
            f"{float((p - grey_psnr)[low].mean()):+.2f} | {float(blotch.mean()):.2%} | "
            f"{float(colourfulness(pred).mean() / truth_cf.mean()):.2f} |"
        )
    if args.sheet is not None:
        worst = torch.argsort(blotches[args.models[0]], descending=True)[:10]
        columns = [grey, *outputs.values(), truth]
        side = truth.shape[-1]
        sheet = Image.new("RGB", (len(columns) * (side + 4), len(worst) * (side + 4) + 16), (255, 255, 255))
        ImageDraw.Draw(sheet).text((2, 2), "grey | " + " | ".join(args.models) + " | truth", fill=(0, 0, 0))
        for r, i in enumerate(worst.tolist()):
            for c, images in enumerate(columns):
                sheet.paste(tile(images[i]), (c * (side + 4), 16 + r * (side + 4)))
        sheet.save(args.sheet)
        print(f"\nwrote {args.sheet}: the ten pictures with the most blotches of {args.models[0]}")


if __name__ == "__main__":
    main()
