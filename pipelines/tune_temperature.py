"""Choose how a classification model is decoded, on TRAINING holdout images and real film frames.

Three dials, chosen on the recipe's holdout split of the training data and on frames of the
video-tune clips (real camera footage; never on the validation set), then frozen into the shipped
model's config:
- alpha: how much of the class-rebalancing tilt to undo. Rebalanced training makes the predicted
  distribution favour rare, saturated colours by the class weights w; a logit offset of
  -alpha*log(w) removes that (alpha = 1: the unbiased posterior, most accurate on average).
- T: the annealed-mean temperature, between the safe mean (T = 1) and the vivid mode (T -> 0).
- the confidence shrink: chroma scaled by the confidence (1 - the normalised entropy of the
  prediction) mapped from a window [low, high] onto [0, 1], to the power gamma: where the model
  cannot tell the colour, neutral instead of an average tint (gamma 0: off; window (0, 1): the
  plain confidence**gamma, which pales sure colours too; a window such as (0.35, 0.55) removes only
  the least confident colour: RESULTS.md, "a confidence gate").

    python pipelines/tune_temperature.py pipelines/v2.toml [--json runs/v2/decoding.json] \
        [--films ../shared/data/video-tune] [--weights runs/v2/resume.safetensors] [--jobs 2]

The network runs once per holdout image and film frame (its logits are kept); every setting is
then only a softmax and a comparison with the truth (about 20 s a setting on one core, mostly
the film frames at full size); ``--jobs`` scores settings in that many processes (one thread each).

Rule (issue 33's bars, as far as data we may tune on can check them: every film clip at or above
grey, the films' mean gain at least 1 dB, the holdout's low-saturation quartile at or above grey -
0.2 dB (the "blue wall" check), blotches (vidcolor.metrics.blotch_share) at most half of the shipped
v2's on the same holdout, 65% of the holdout truth's colourfulness): among the settings that meet
the most of these bars, the most colourful whose mean holdout PSNR gain over grey is at least 80%
of the best gain among them (most of the accuracy, as much colour as that allows).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma, ycbcr_to_rgb
from vidcolor.metrics import blotch_share, colourfulness, psnr
from vidcolor.models.ab_bins import annealed_mean, chroma_scale, confidence
from vidcolor.models.base import render_shape, resize_luma
from vidcolor.models.registry import load_model
from vidcolor.models.weights import load_generator, read_metadata
from vidcolor.train.recipe import load_recipe
from vidcolor.train.trainer import Trainer

ALPHAS = (0.5, 0.75, 1.0)
TEMPERATURES = (0.38, 0.55, 0.8, 1.0)
# Confidence shrinks (gamma, low, high): off, the plain power, then windows (gamma 1: a ramp).
SHRINKS = (
    (0.0, 0.0, 1.0),
    (0.5, 0.0, 1.0),
    (1.0, 0.0, 1.0),
    (2.0, 0.0, 1.0),
    (1.0, 0.2, 0.6),
    (1.0, 0.25, 0.45),
    (1.0, 0.3, 0.5),
    (1.0, 0.3, 0.6),
    (1.0, 0.35, 0.55),
    (1.0, 0.4, 0.6),
    (1.0, 0.45, 0.65),
)
BATCH = 32
FILM_STRIDE = 6  # every 6th frame of each clip
FILM_RENDER_FACTOR = 16  # the video default


@torch.no_grad()
def holdout_logits(model: torch.nn.Module, luma: torch.Tensor) -> list[torch.Tensor]:
    """Raw head outputs (stride 4) of the holdout, one tensor a batch."""
    return [model.head_output(luma_to_lightness(luma[i : i + BATCH])).float() for i in range(0, len(luma), BATCH)]


@torch.no_grad()
def score(
    logits: list[torch.Tensor],
    centers: torch.Tensor,
    bias: torch.Tensor,
    rgb: torch.Tensor,
    temperature: float,
    shrink: tuple[float, float, float] = (0.0, 0.0, 1.0),
) -> dict[str, torch.Tensor]:
    """PSNR and colourfulness of each picture of ``rgb`` (all of one size) decoded from ``logits``."""
    luma = rgb_to_luma(rgb)
    preds = []
    for i, part in enumerate(logits):
        biased = part + bias
        ab = annealed_mean(biased, centers, temperature)
        if shrink[0] > 0:
            ab = ab * chroma_scale(confidence(biased), *shrink)
        ab = F.interpolate(ab, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        preds.append(compose_rgb(luma[i * BATCH : (i + 1) * BATCH], ab))
    pred = torch.cat(preds)
    return {"psnr": psnr(pred, rgb), "colourfulness": colourfulness(pred), "blotches": blotch_share(pred, rgb)}


@torch.no_grad()
def film_frames(model: torch.nn.Module, folder: Path) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
    """Each clip of ``folder``: every FILM_STRIDE-th frame (RGB, full size) and the network's
    logits for them at the video render size."""
    clips = {}
    for clip in sorted(folder.glob("*.mp4")):
        with av.open(str(clip)) as c:
            frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % FILM_STRIDE == 0]
        rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
        small = resize_luma(rgb_to_luma(rgb), render_shape(*rgb.shape[-2:], FILM_RENDER_FACTOR, True))
        clips[clip.stem] = (rgb, holdout_logits(model, small))
    return clips


# What the worker processes score (set before they fork; read only there).
_GRID: dict = {}


def score_setting(setting: tuple[float, float, tuple[float, float, float]]) -> dict:
    """One (alpha, T, (gamma, low, high)) scored on the holdout and every film clip (uses _GRID)."""
    torch.set_num_threads(1)
    g = _GRID
    alpha, t, shrink = setting
    bias = (-alpha * g["log_w"]).view(1, -1, 1, 1)
    s = score(g["logits"], g["centers"], bias, g["rgb"], t, shrink)
    film_gains = {
        name: float(score(film_logits, g["centers"], bias, frames, t, shrink)["psnr"].mean()) - g["film_grey"][name]
        for name, (frames, film_logits) in g["films"].items()
    }
    return {
        "alpha": alpha,
        "temperature": t,
        "gamma": shrink[0],
        "window": list(shrink[1:]),
        "psnr": float(s["psnr"].mean()),
        "gray_psnr": float(g["gray"].mean()),
        "low_sat_gain": float((s["psnr"] - g["gray"])[g["low"]].mean()),
        "colourfulness": float(s["colourfulness"].mean()),
        "truth_colourfulness": float(g["truth_cf"].mean()),
        "blotches": float(s["blotches"].mean()),
        "blotch_bar": g["blotch_bar"],
        "film_gains": film_gains,
    }


def bars_met(row: dict) -> dict[str, bool]:
    """Issue 33's bars as far as the data we may tune on can check them, for one setting."""
    gains = list(row["film_gains"].values()) or [0.0]
    return {
        "no film clip below grey": min(gains) >= 0.0,
        "films +1 dB over grey": float(np.mean(gains)) >= 1.0,
        "low-saturation quartile >= grey - 0.2 dB": row["low_sat_gain"] >= -0.2,
        "blotches <= half of v2's": row["blotches"] <= row["blotch_bar"],
        "65% of the truth's colourfulness": row["colourfulness"] >= 0.65 * row["truth_colourfulness"],
    }


def feasible(rows: list[dict]) -> tuple[list[dict], str]:
    """The settings that meet the most bars (every bar counts the same: a near-grey decoding that
    keeps every film at grey is not preferred to a coloured one that meets as many bars)."""
    met = [bars_met(r) for r in rows]
    best = max(sum(m.values()) for m in met)
    chosen = [(r, m) for r, m in zip(rows, met, strict=True) if sum(m.values()) == best]
    group = [r for r, _ in chosen]
    missed = sorted({bar for _, m in chosen for bar, ok in m.items() if not ok})
    why = f"{best} of {len(met[0])} bars hold for {len(group)} settings"
    return group, why + (f" (missed by some of them: {'; '.join(missed)})" if missed else " (every bar)")


def choose(rows: list[dict], keep: float = 0.8) -> dict:
    group, _ = feasible(rows)
    best_gain = max(r["psnr"] - r["gray_psnr"] for r in group)
    if best_gain <= 0:  # nothing beats grey yet: take the most accurate setting
        return max(group, key=lambda r: r["psnr"])
    ok = [r for r in group if r["psnr"] - r["gray_psnr"] >= keep * best_gain]
    return max(ok, key=lambda r: r["colourfulness"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--films",
        type=Path,
        default=Path("../shared/data/video-tune"),
        help="folder of real colour clips (not the validation set)",
    )
    ap.add_argument(
        "--weights", type=Path, default=None, help="weights to decode (default: the recipe's latest checkpoint)"
    )
    ap.add_argument("--jobs", type=int, default=1, help="processes scoring the grid (one torch thread each)")
    ap.add_argument(
        "--blotch-reference",
        default="vidcolor-lite0-cls-v2",
        help="the model whose blotches on this holdout, halved, are the bar",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    trainer = Trainer(load_recipe(args.recipe))  # resumes the recipe's latest checkpoint (read only)
    model = trainer.model.eval()
    if args.weights is not None:
        model = load_generator(args.weights)[0].eval()
    rgb = trainer.holdout_rgb
    log_w = torch.log(trainer.class_weights.float().cpu())
    centers = model.bin_centers.cpu()
    logits = holdout_logits(model, rgb_to_luma(rgb))
    films = film_frames(model, args.films) if args.films.is_dir() else {}
    film_grey = {
        name: float(psnr(rgb_to_luma(frames).expand(-1, 3, -1, -1), frames).mean())
        for name, (frames, _) in films.items()
    }
    gray = psnr(rgb_to_luma(rgb).expand(-1, 3, -1, -1), rgb)
    truth_cf = colourfulness(rgb)
    low = truth_cf <= truth_cf.quantile(0.25)  # the low-saturation quartile
    reference = load_model(args.blotch_reference)
    luma = rgb_to_luma(rgb)
    ref_pred = ycbcr_to_rgb(
        luma, torch.cat([reference.predict_chroma(luma[i : i + BATCH]) for i in range(0, len(luma), BATCH)])
    ).clamp(0, 1)
    blotch_bar = 0.5 * float(blotch_share(ref_pred, rgb).mean())
    _GRID.update(
        blotch_bar=blotch_bar,
        logits=logits,
        centers=centers,
        log_w=log_w,
        rgb=rgb,
        films=films,
        film_grey=film_grey,
        gray=gray,
        low=low,
        truth_cf=truth_cf,
    )
    settings = list(itertools.product(ALPHAS, TEMPERATURES, SHRINKS))
    if args.jobs > 1:
        # fork: the workers share the logits and frames computed above without copying them
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            rows = pool.map(score_setting, settings, chunksize=1)
    else:
        rows = [score_setting(s) for s in settings]
    pick = choose(rows)
    meta = read_metadata(args.weights) if args.weights is not None else {}
    step = meta.get("step") or meta.get("steps", "?") if args.weights is not None else trainer.step
    print(
        f"step {step}, {len(rgb)} holdout images (training split, never trained on), {len(films)} film clips (every "
        f"{FILM_STRIDE}th frame)"
    )
    print(f"blotch bar: {blotch_bar:.2%} (half of {args.blotch_reference}'s {2 * blotch_bar:.2%} on this holdout)")
    print(f"rule: {feasible(rows)[1]}")
    print(
        "| alpha | T | gamma | window | PSNR dB | gain over grey dB | low-sat quartile gain dB | colourfulness | "
        "/ truth | blotches | films: mean gain dB | worst clip dB | bars met |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " **chosen**" if r is pick else ""
        gains = list(r["film_gains"].values()) or [float("nan")]
        print(
            f"| {r['alpha']} | {r['temperature']} | {r['gamma']} | {r['window'][0]}–{r['window'][1]}{mark} | "
            f"{r['psnr']:.2f} | "
            f"{r['psnr'] - r['gray_psnr']:+.2f} | {r['low_sat_gain']:+.2f} | "
            f"{r['colourfulness']:.1f} | {r['colourfulness'] / r['truth_colourfulness']:.0%} | {r['blotches']:.2%} | "
            f"{np.mean(gains):+.2f} "
            f"| {min(gains):+.2f} | {sum(bars_met(r).values())} |"
        )
    if args.json:
        bias = (-pick["alpha"] * log_w).tolist()
        chosen = {
            "alpha": pick["alpha"],
            "temperature": pick["temperature"],
            "confidence_gamma": pick["gamma"],
            "confidence_window": pick["window"],
            "bin_bias": bias,
            "step": step,
        }
        args.json.write_text(json.dumps({"rows": rows, **chosen}, indent=2))


if __name__ == "__main__":
    main()
