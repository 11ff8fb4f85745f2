"""Choose how a classification model is decoded, on TRAINING holdout images.

Two dials, both chosen on the recipe's holdout split of the training data (never on the
validation set), then frozen into the shipped model's config:
- alpha: how much of the class-rebalancing tilt to undo. Rebalanced training makes the predicted
  distribution favour rare, saturated colours by the class weights w; a logit offset of
  -alpha*log(w) removes that (alpha = 1: the unbiased posterior, most accurate on average).
- T: the annealed-mean temperature, between the safe mean (T = 1) and the vivid mode (T -> 0).

    python pipelines/tune_temperature.py pipelines/v2.toml [--json runs/v2/decoding.json]

The network runs once per holdout image (its logits are kept); every (alpha, T) pair is then only
a softmax, so the whole grid costs about one holdout evaluation.

Rule: the most colourful pair whose mean PSNR gain over grey is at least 80% of the best gain on
the grid (most of the accuracy, as much colour as that allows). The table also reports the
low-saturation quartile of the holdout (the "blue wall" check of issue 11).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma
from vidcolor.metrics import colourfulness, psnr
from vidcolor.models.ab_bins import annealed_mean
from vidcolor.train.recipe import load_recipe
from vidcolor.train.trainer import Trainer

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
TEMPERATURES = (0.3, 0.38, 0.45, 0.55, 0.65, 0.8, 1.0)
BATCH = 32


@torch.no_grad()
def holdout_logits(model: torch.nn.Module, luma: torch.Tensor) -> list[torch.Tensor]:
    """Raw head outputs (stride 4) of the holdout, one tensor a batch."""
    return [model.head_output(luma_to_lightness(luma[i : i + BATCH])).float() for i in range(0, len(luma), BATCH)]


@torch.no_grad()
def score(logits: list[torch.Tensor], centers: torch.Tensor, bias: torch.Tensor, rgb: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    luma = rgb_to_luma(rgb)
    preds = []
    for i, part in enumerate(logits):
        ab = annealed_mean(part + bias, centers, temperature)
        ab = F.interpolate(ab, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        preds.append(compose_rgb(luma[i * BATCH : (i + 1) * BATCH], ab))
    pred = torch.cat(preds)
    return {"psnr": psnr(pred, rgb), "colourfulness": colourfulness(pred)}


def choose(rows: list[dict[str, float]], keep: float = 0.8) -> dict[str, float]:
    best_gain = max(r["psnr"] - r["gray_psnr"] for r in rows)
    if best_gain <= 0:  # nothing beats grey yet: take the most accurate pair
        return max(rows, key=lambda r: r["psnr"])
    ok = [r for r in rows if r["psnr"] - r["gray_psnr"] >= keep * best_gain]
    return max(ok, key=lambda r: r["colourfulness"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    trainer = Trainer(load_recipe(args.recipe))  # resumes the recipe's latest checkpoint (read only)
    model = trainer.model.eval()
    rgb = trainer.holdout_rgb
    log_w = torch.log(trainer.class_weights.float().cpu())
    centers = model.bin_centers.cpu()
    logits = holdout_logits(model, rgb_to_luma(rgb))
    gray = psnr(rgb_to_luma(rgb).expand(-1, 3, -1, -1), rgb)
    truth_cf = colourfulness(rgb)
    low = truth_cf <= truth_cf.quantile(0.25)  # the low-saturation quartile
    rows = []
    for alpha in ALPHAS:
        bias = (-alpha * log_w).view(1, -1, 1, 1)
        for t in TEMPERATURES:
            s = score(logits, centers, bias, rgb, t)
            rows.append({
                "alpha": alpha, "temperature": t,
                "psnr": float(s["psnr"].mean()), "gray_psnr": float(gray.mean()),
                "low_sat_gain": float((s["psnr"] - gray)[low].mean()),
                "colourfulness": float(s["colourfulness"].mean()), "truth_colourfulness": float(truth_cf.mean()),
            })
    pick = choose(rows)
    print(f"step {trainer.step}, {len(rgb)} holdout images (training split, never trained on)")
    print("| alpha | T | PSNR dB | gain over grey dB | low-sat quartile gain dB | colourfulness | / truth |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " **chosen**" if r is pick else ""
        print(f"| {r['alpha']} | {r['temperature']}{mark} | {r['psnr']:.2f} | {r['psnr'] - r['gray_psnr']:+.2f} | {r['low_sat_gain']:+.2f} | {r['colourfulness']:.1f} | {r['colourfulness'] / r['truth_colourfulness']:.0%} |")
    if args.json:
        bias = (-pick["alpha"] * log_w).tolist()
        args.json.write_text(json.dumps({"rows": rows, "alpha": pick["alpha"], "temperature": pick["temperature"], "bin_bias": bias, "step": trainer.step}, indent=2))


if __name__ == "__main__":
    main()
