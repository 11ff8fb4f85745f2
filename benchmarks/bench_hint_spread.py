"""Colour hints, before and after they were kept on their object: PSNR at N random points and how
far ONE point reaches, on the same held-out training-corpus pictures.

Pictures and points as pipelines/tune_hint_spread.py takes them (the v3 corpus's held-out split
minus the pictures the trainer scores, evenly thinned; N uniformly random 3x3 squares revealing
their true mean ab, seed 1); never BSDS500. "before": the bilateral-grid spreading vidcolor used
until 2026-12-07 (cells 8, bins 16, passes 4, falloff 1e-5, the model's own answer unbounded);
"after": vidcolor.hints.spread_hints with the shipped HintSpread.

    python benchmarks/bench_hint_spread.py [--model default] [--count 200]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import torch

from vidcolor.bilateral import spread
from vidcolor.color import ab_to_chroma, rgb_to_luma
from vidcolor.hints import spread_hints
from vidcolor.models.generator import AB_SCALE
from vidcolor.models.registry import load_model
from vidcolor.settings import HintSpread
from vidcolor.train.hints import fixed_point_hints

ROOT = Path(__file__).resolve().parent.parent
POINTS = (1, 5, 10, 50)
BATCH = 25


def _tuner():
    """pipelines/tune_hint_spread.py, for its picture choice and model runner (one definition)."""
    spec = importlib.util.spec_from_file_location("tune_hint_spread", ROOT / "pipelines" / "tune_hint_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def before(luma: torch.Tensor, hinted: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """The former spreading: the correction splatted on a bilateral grid and read back everywhere."""
    mask = planes[:, 2:3]
    target = ab_to_chroma(luma, planes[:, :2] * AB_SCALE)
    cell = max(1, round(max(luma.shape[-2:]) / 8))
    num, den = spread((target - hinted) * mask, mask, luma, cell, 16, 4)
    return torch.where(mask > 0, target, hinted + num / (den + 1e-5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tuner = _tuner()
    model = load_model(args.model)
    rgb = tuner.held_out_pictures(ROOT / "pipelines" / "v3.toml", args.count)
    luma = rgb_to_luma(rgb)
    automatic = tuner.predictions(model, luma, torch.zeros(len(rgb), 3, *rgb.shape[-2:]))
    auto_psnr = tuner.mean_psnr(luma, automatic, rgb)
    print(f"{args.model}, {len(rgb)} held-out corpus pictures: automatic {auto_psnr:.2f} dB; after: {HintSpread()}")
    print("\n| points | before dB (gain) | after dB (gain) |\n| --- | --- | --- |")
    for points in POINTS:
        planes = fixed_point_hints(rgb, points, 3, 1)
        hinted = tuner.predictions(model, luma, planes)
        parts = [slice(i, i + BATCH) for i in range(0, len(rgb), BATCH)]
        old = torch.cat([before(luma[s], hinted[s], planes[s]) for s in parts])
        new = torch.cat([spread_hints(luma[s], hinted[s], planes[s], automatic=automatic[s]) for s in parts])
        row = [tuner.mean_psnr(luma, out, rgb) for out in (old, new)]
        print(f"| {points} | {row[0]:.2f} ({row[0] - auto_psnr:+.2f}) | {row[1]:.2f} ({row[1] - auto_psnr:+.2f}) |")
        if points == 1:
            reach = [float(((out - automatic).abs().amax(1) > 4 / 255).float().mean()) for out in (old, new)]
    before_share, after_share = reach
    print(f"\nONE point changes the chroma (> 4 code values) of {before_share:.1%} of the picture before, ", end="")
    print(f"{after_share:.1%} after")


if __name__ == "__main__":
    main()
