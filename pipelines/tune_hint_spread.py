"""Choose how far a hint's correction spreads (vidcolor.hints.HintSpread), on TRAINING holdout images.

The recipe's holdout split of the training data (never the validation set) gets N simulated user
points each (the evaluation rule: uniformly random 3x3 squares revealing their true mean ab,
seeded). The hint model runs once per point count; every HintSpread setting is then only the
bilateral-grid spreading, so the grid is cheap.

    python pipelines/tune_hint_spread.py pipelines/v2.toml [--decoding runs/v2/decoding.json]

``--decoding``: a tune_temperature.py JSON (alpha, T) to decode the model as it will ship.
Rule: the setting with the best mean PSNR at 10 points; the table also shows 1, 5 and 50 points
and the model alone (no spreading).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from vidcolor.color import ab_to_chroma, luma_to_lightness, rgb_to_luma, ycbcr_to_rgb
from vidcolor.hints import spread_hints
from vidcolor.metrics import psnr
from vidcolor.settings import HintSpread
from vidcolor.train.hints import fixed_point_hints
from vidcolor.train.recipe import load_recipe
from vidcolor.train.trainer import Trainer

POINTS = (1, 5, 10, 50)
GRID = {"cells": (4, 6, 8, 16), "bins": (8, 16), "passes": (2, 4, 8), "falloff": (1e-5, 1e-4, 1e-3)}
BATCH = 32


@torch.no_grad()
def predictions(model: torch.nn.Module, luma: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor:
    parts = []
    for i in range(0, len(luma), BATCH):
        h = hints[i : i + BATCH] if hints is not None else None
        ab = model(luma_to_lightness(luma[i : i + BATCH]), hints=h)
        parts.append(ab_to_chroma(luma[i : i + BATCH], ab))
    return torch.cat(parts)


def mean_psnr(luma: torch.Tensor, chroma: torch.Tensor, rgb: torch.Tensor) -> float:
    return float(psnr(ycbcr_to_rgb(luma, chroma).clamp(0, 1), rgb).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--decoding", type=Path, default=None, help="tune_temperature.py JSON: decode as it will ship")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    trainer = Trainer(load_recipe(args.recipe))  # resumes the recipe's latest checkpoint (read only)
    model = trainer.model.eval()
    if args.decoding is not None:
        d = json.loads(args.decoding.read_text())
        model.set_decoding(temperature=d["temperature"], bin_bias=tuple(d["bin_bias"]))
    rgb = trainer.holdout_rgb
    luma = rgb_to_luma(rgb)
    seed = trainer.cfg.seed + 1  # not the trainer's own holdout-hint draw
    auto = predictions(model, luma, None)
    rows: list[dict] = []
    base = {"automatic": mean_psnr(luma, auto, rgb), "grey": float(psnr(luma.expand(-1, 3, -1, -1), rgb).mean())}
    configs = [HintSpread(**dict(zip(GRID, values))) for values in itertools.product(*GRID.values())]
    by_points = {}
    for points in POINTS:
        planes = fixed_point_hints(rgb, points, 3, seed)
        chroma = predictions(model, luma, planes)
        by_points[points] = {"model_only": mean_psnr(luma, chroma, rgb)}
        for cfg in configs if points == 10 else []:
            out = torch.cat(
                [
                    spread_hints(luma[i : i + BATCH], chroma[i : i + BATCH], planes[i : i + BATCH], config=cfg)
                    for i in range(0, len(rgb), BATCH)
                ]
            )
            rows.append({**cfg.__dict__, "psnr": mean_psnr(luma, out, rgb)})
        by_points[points]["planes"], by_points[points]["chroma"] = planes, chroma
    best = max(rows, key=lambda r: r["psnr"])
    pick = HintSpread(**{k: best[k] for k in GRID})
    print(
        f"step {trainer.step}, {len(rgb)} holdout images (training split); grey {base['grey']:.2f} dB, automatic "
        f"{base['automatic']:.2f} dB"
    )
    print("\nTop settings at 10 points (PSNR dB, gain over automatic):")
    for r in sorted(rows, key=lambda r: -r["psnr"])[:8]:
        print(
            f"  cells {r['cells']:>2} bins {r['bins']:>2} passes {r['passes']} falloff {r['falloff']:g}: "
            f"{r['psnr']:.2f} ({r['psnr'] - base['automatic']:+.2f})"
        )
    print(f"\n| points | model alone dB | + spreading ({pick}) dB | gain over automatic dB |")
    print("| --- | --- | --- | --- |")
    curve = {}
    for points, d in by_points.items():
        out = torch.cat(
            [
                spread_hints(luma[i : i + BATCH], d["chroma"][i : i + BATCH], d["planes"][i : i + BATCH], config=pick)
                for i in range(0, len(rgb), BATCH)
            ]
        )
        spread_psnr = mean_psnr(luma, out, rgb)
        curve[points] = {"model_only": d["model_only"], "spread": spread_psnr}
        print(f"| {points} | {d['model_only']:.2f} | {spread_psnr:.2f} | {spread_psnr - base['automatic']:+.2f} |")
    if args.json:
        args.json.write_text(
            json.dumps({"step": trainer.step, "base": base, "rows": rows, "chosen": best, "curve": curve}, indent=2)
        )


if __name__ == "__main__":
    main()
