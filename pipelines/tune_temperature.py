"""Choose how a classification model is decoded, on TRAINING holdout images.

Two dials, both chosen on the recipe's holdout split of the training data (never on the
validation set), then frozen into the shipped model's config:
- alpha: how much of the class-rebalancing tilt to undo. Rebalanced training makes the predicted
  distribution favour rare, saturated colours by the class weights w; a logit offset of
  -alpha*log(w) removes that (alpha = 1: the unbiased posterior, most accurate on average).
- T: the annealed-mean temperature, between the safe mean (T = 1) and the vivid mode (T -> 0).

    python pipelines/tune_temperature.py pipelines/default.toml [--checkpoint runs/default/checkpoint.pt]

Rule: the most colourful temperature whose mean PSNR gain over grey is at least 80% of the best
gain on the grid (most of the accuracy, as much colour as that allows).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma  # noqa: E402
from vidcolor.metrics import colourfulness, psnr  # noqa: E402
from vidcolor.train.recipe import load_recipe  # noqa: E402
from vidcolor.train.trainer import Trainer  # noqa: E402

ALPHAS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
TEMPERATURES = (0.3, 0.38, 0.45, 0.55, 0.65, 0.8, 1.0)


@torch.no_grad()
def score(model: torch.nn.Module, rgb: torch.Tensor, temperature: float, alpha: float) -> dict[str, float]:
    luma = rgb_to_luma(rgb)
    preds = [compose_rgb(luma[i : i + 32], model(luma_to_lightness(luma[i : i + 32]), temperature=temperature).float()) for i in range(0, len(rgb), 32)]
    pred = torch.cat(preds)
    gray = luma.expand(-1, 3, -1, -1)
    return {
        "alpha": alpha,
        "temperature": temperature,
        "psnr": float(psnr(pred, rgb).mean()),
        "gray_psnr": float(psnr(gray, rgb).mean()),
        "colourfulness": float(colourfulness(pred).mean()),
        "truth_colourfulness": float(colourfulness(rgb).mean()),
    }


def choose(rows: list[dict[str, float]], keep: float = 0.8) -> dict[str, float]:
    best_gain = max(r["psnr"] - r["gray_psnr"] for r in rows)
    if best_gain <= 0:  # no temperature beats grey yet: take the most accurate one
        return max(rows, key=lambda r: r["psnr"])
    ok = [r for r in rows if r["psnr"] - r["gray_psnr"] >= keep * best_gain]
    return max(ok, key=lambda r: r["colourfulness"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    trainer = Trainer(load_recipe(args.recipe))  # resumes the recipe's latest checkpoint (read only)
    model = trainer.model.eval()
    log_w = torch.log(trainer.class_weights.float().cpu())
    rows = []
    for alpha in ALPHAS:
        model.set_decoding(bin_bias=tuple((-alpha * log_w).tolist()))
        rows.extend(score(model, trainer.holdout_rgb, t, alpha) for t in TEMPERATURES)
    pick = choose(rows)
    print(f"step {trainer.step}, {len(trainer.holdout_rgb)} holdout images (training split, never trained on)")
    print("| alpha | T | PSNR dB | gain over grey dB | colourfulness | / truth |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " **chosen**" if r is pick else ""
        print(f"| {r['alpha']} | {r['temperature']}{mark} | {r['psnr']:.2f} | {r['psnr'] - r['gray_psnr']:+.2f} | {r['colourfulness']:.1f} | {r['colourfulness'] / r['truth_colourfulness']:.0%} |")
    if args.json:
        bias = (-pick["alpha"] * log_w).tolist()
        args.json.write_text(json.dumps({"rows": rows, "alpha": pick["alpha"], "temperature": pick["temperature"], "bin_bias": bias, "step": trainer.step}, indent=2))


if __name__ == "__main__":
    main()
