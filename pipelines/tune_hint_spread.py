"""Choose how far a hint reaches (vidcolor.settings.HintSpread), on held-out TRAINING-corpus pictures.

Pictures: the v3 corpus's held-out split (pipelines/build_corpus.py; never BSDS500, never a DAVIS
validation frame), minus the ones the v3 trainer scores during training, evenly thinned to
``--count``; 192x192 as packed. Each gets N simulated user points (the evaluation rule: uniformly
random 3x3 squares revealing their true mean ab, seeded). The model runs once without hints and
once per point count; each HintSpread setting is then only the geodesic spreading.

    python pipelines/tune_hint_spread.py [--model NAME] [--count 200] [--json FILE]

Rule: among the settings local enough (LOCAL_RATIOS), the best mean PSNR at 10 points.
Beside it, how far ONE point reaches: the mean share of the picture whose chroma it changes by more
than 4 code values (a hint should colour its object, not the scene).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import rgb_to_luma, ycbcr_to_rgb
from vidcolor.hints import spread_hints
from vidcolor.metrics import psnr
from vidcolor.models.registry import DEFAULT_ALIAS, load_model
from vidcolor.settings import HintSpread
from vidcolor.train.corpus import CorpusFilter, open_corpus
from vidcolor.train.hints import fixed_point_hints
from vidcolor.train.recipe import load_recipe

POINTS = (1, 5, 10, 50)
# Locality first: a hint must not cross an object's outline. One step of 0.25 out of its object
# (distance edge / 4 added) must leave at most 1/64 of a correction: with the weight
# 1 / (1 + (d / reach)**4), edge / reach >= 11.3. The grid holds only such settings.
LOCAL_RATIOS = (12.0, 16.0)
GRID = {"reach": (1.6, 3.2, 6.4, 12.8, 25.6), "ratio": LOCAL_RATIOS, "smooth": (0.1, 0.2, 0.3)}


def spread_setting(reach: float, ratio: float, smooth: float) -> HintSpread:
    return HintSpread(reach=reach, edge=reach * ratio, smooth=smooth)


BATCH = 25
CODE_VALUE = 1.0 / 255.0


def held_out_pictures(recipe: Path, count: int) -> torch.Tensor:
    """(N,3,192,192) RGB in [0,1]: held-out corpus pictures the trainer does not score, thinned evenly."""
    data = load_recipe(recipe).data
    corpus = open_corpus(data.corpus, data.corpus_fingerprint)
    _, _, held = corpus.split(CorpusFilter(data.min_saturation, data.max_flatness))
    scored = held[np.linspace(0, len(held) - 1, min(len(held), data.holdout)).round().astype(np.int64)]
    free = np.setdiff1d(held, scored)
    pick = free[np.linspace(0, len(free) - 1, min(len(free), count)).round().astype(np.int64)]
    return torch.from_numpy(np.ascontiguousarray(corpus.high[pick])).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def predictions(model, luma: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [model.predict_chroma(luma[i : i + BATCH], hints=planes[i : i + BATCH]) for i in range(0, len(luma), BATCH)]
    )


def spread_all(luma, hinted, automatic, planes, cfg: HintSpread) -> torch.Tensor:
    return torch.cat(
        [
            spread_hints(luma[s], hinted[s], planes[s], config=cfg, automatic=automatic[s])
            for s in (slice(i, i + BATCH) for i in range(0, len(luma), BATCH))
        ]
    )


def mean_psnr(luma: torch.Tensor, chroma: torch.Tensor, rgb: torch.Tensor) -> float:
    return float(psnr(ycbcr_to_rgb(luma, chroma).clamp(0, 1), rgb).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_ALIAS)
    ap.add_argument("--recipe", type=Path, default=Path("pipelines/v3.toml"), help="names the corpus and its split")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    rgb = held_out_pictures(args.recipe, args.count)
    luma = rgb_to_luma(rgb)
    zeros = torch.zeros(len(rgb), 3, *rgb.shape[-2:])
    automatic = predictions(model, luma, zeros)
    base = {"grey": float(psnr(luma.expand(-1, 3, -1, -1), rgb).mean()), "automatic": mean_psnr(luma, automatic, rgb)}
    configs = [spread_setting(*values) for values in itertools.product(*GRID.values())]
    runs = {}
    for points in POINTS:
        planes = fixed_point_hints(rgb, points, 3, args.seed)
        runs[points] = (planes, predictions(model, luma, planes))
    rows = []
    for cfg in configs:
        out10 = spread_all(luma, runs[10][1], automatic, runs[10][0], cfg)
        out1 = spread_all(luma, runs[1][1], automatic, runs[1][0], cfg)
        reach = float(((out1 - automatic).abs().amax(1) > 4 * CODE_VALUE).float().mean())
        rows.append({**cfg.__dict__, "psnr10": mean_psnr(luma, out10, rgb), "one_point_reach": reach})
        print(f"  {cfg}: 10 points {rows[-1]['psnr10']:.2f} dB, one point changes {reach:.1%}", flush=True)
    best = max(rows, key=lambda r: r["psnr10"])
    pick = HintSpread(**{k: best[k] for k in ("reach", "edge", "smooth", "rounds")})
    print(
        f"\n{args.model}, {len(rgb)} held-out corpus pictures; grey {base['grey']:.2f} dB, automatic "
        f"{base['automatic']:.2f} dB; chosen {pick}"
    )
    print("\n| points | the model alone dB | + spreading dB | gain over automatic dB |")
    print("| --- | --- | --- | --- |")
    curve = {}
    for points, (planes, hinted) in runs.items():
        alone = mean_psnr(luma, hinted, rgb)
        spread_psnr = mean_psnr(luma, spread_all(luma, hinted, automatic, planes, pick), rgb)
        curve[points] = {"model_alone": alone, "spread": spread_psnr}
        print(f"| {points} | {alone:.2f} | {spread_psnr:.2f} | {spread_psnr - base['automatic']:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"base": base, "rows": rows, "chosen": best, "curve": curve}, indent=2))


if __name__ == "__main__":
    main()
