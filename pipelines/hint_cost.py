"""What the colour-hint inputs cost the automatic model (issue 17): v2's recipe trained twice on
the same reduced budget, once with the hint inputs and simulated hints and once without them
(a hint-free network), then both scored WITHOUT hints on the same data.

    python pipelines/hint_cost.py [--steps 1200] [--batch 16] [--out runs/hint-cost] [--json F]

Both arms use pipelines/v2.toml's data, augmentation, loss and seed (so they see the same batches in
the same order: the hint simulation draws from its own random stream), at 160² crops, one process
of one torch thread each, run side by side (one core each). They also start from the same network:
the hint arm's is the hint-free one's (ImageNet encoder, seeded decoder) with its hint weights at
zero, so at step 0 both compute the same colour and only the training differs. Each arm resumes from its own
checkpoint if interrupted. The budget is a proxy: v2 itself saw 48,000 steps of 32; a second run of
that length is days of this CPU. Scored on the recipe's 256-photo training holdout (never trained
on) and on every 6th frame of the video-tune clips, never on the validation set, at two decodings:
the recipe's training default (T 0.38, no rebalancing correction) and the unbiased mean (alpha 1,
T 1: the most accurate decoding of the earlier tuning grids).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import numpy as np
import torch
from tune_temperature import film_frames, holdout_logits, score  # the tuning's own scoring (same folder)

from vidcolor.color import rgb_to_luma
from vidcolor.metrics import psnr
from vidcolor.models.efficientnet import load_imagenet_weights
from vidcolor.models.generator import Generator, GeneratorConfig
from vidcolor.models.weights import load_generator, save_generator
from vidcolor.train.modes import build_trainer
from vidcolor.train.recipe import Recipe, load_recipe

ARMS = ("hints", "hint-free")


def paired_inits(config: GeneratorConfig, seed: int, out: Path) -> dict[str, Path]:
    """Starting weights of both arms: a seeded hint-free network with the ImageNet encoder, and
    the same network with hint inputs whose weights are zero (the hint stem, and the hint planes'
    columns of the stride-4 fuse, which take the last input channels)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        free = Generator(GeneratorConfig(**{**config.to_dict(), "hints": False}))
        load_imagenet_weights(free.encoder)
    hinted = Generator(GeneratorConfig(**{**config.to_dict(), "hints": True}))
    state = hinted.state_dict()
    for name, value in free.state_dict().items():
        if state[name].shape == value.shape:
            state[name] = value.clone()
        else:  # the fuse after the stride-4 skip: hint planes are its last input channels
            state[name] = torch.zeros_like(state[name])
            state[name][:, : value.shape[1]] = value
    hinted.load_state_dict(state)
    hinted.hint_stem.weight.data.zero_()
    free.eval()
    hinted.eval()
    probe = torch.rand(1, 1, 64, 64) * 100
    if not torch.allclose(free.head_output(probe), hinted.head_output(probe), atol=1e-5):
        raise SystemExit("the two starting networks differ (hint weights not neutral)")
    paths = {"hint-free": out / "init-hint-free.safetensors", "hints": out / "init-hints.safetensors"}
    save_generator(free, paths["hint-free"], {"name": "hint-cost-init"})
    save_generator(hinted, paths["hints"], {"name": "hint-cost-init"})
    return paths


def arm_recipe(base: Path, init: Path, hints: bool, steps: int, batch: int, out: Path) -> Recipe:
    """v2's recipe cut to ``steps`` steps of ``batch`` at the first crop size, on one process,
    from ``init``; ``hints`` must match that network (it decides the holdout's hint scoring)."""
    return load_recipe(
        base,
        {
            "model": {"hints": hints},
            "train": {
                "init_from": str(init),
                "steps": steps,
                "batch_size": batch,
                "procs": 1,
                "threads": 1,
                "final_steps": 0,
                "schedule": "wsd",
                "decay_steps": steps // 3,
                "warmup_steps": max(1, steps // 8),
                "out_dir": str(out),
                "resume_weights": "",
                "checkpoint_every": 100,
                "sample_every": steps,
                "log_every": 100,
            },
        },
    )


def _train(recipe: Recipe, log_file: str) -> None:
    torch.set_num_threads(1)
    with open(log_file, "a") as log:

        def write(row: dict) -> None:
            log.write("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()) + "\n")
            log.flush()

        build_trainer(recipe, log=write).run()


def train_arms(recipes: dict[str, Recipe], out: Path) -> None:
    """Both arms side by side, one process (and core) each; raises if either fails."""
    ctx = multiprocessing.get_context("spawn")
    procs = {name: ctx.Process(target=_train, args=(r, str(out / f"{name}.log"))) for name, r in recipes.items()}
    for p in procs.values():
        p.start()
    for p in procs.values():
        p.join()
    failed = [name for name, p in procs.items() if p.exitcode != 0]
    if failed:
        raise SystemExit(f"training failed for {failed}: see {out}/<arm>.log")


@torch.no_grad()
def scores(recipe: Recipe, films_dir: Path) -> dict[str, float]:
    """Automatic (hint-free) PSNR of an arm's final model on the holdout and the film frames."""
    trainer = build_trainer(recipe)  # resumes the finished arm (read only): its holdout and class weights
    model = load_generator(Path(recipe.train.out_dir) / "model.safetensors")[0].eval()
    rgb = trainer.holdout_rgb
    log_w = torch.log(trainer.class_weights.float().cpu())
    logits = holdout_logits(model, rgb_to_luma(rgb))
    films = film_frames(model, films_dir) if films_dir.is_dir() else {}
    out = {"grey": float(psnr(rgb_to_luma(rgb).expand(-1, 3, -1, -1), rgb).mean())}
    for label, alpha, t in (("default", 0.0, recipe.model.temperature), ("alpha1-T1", 1.0, 1.0)):
        bias = (-alpha * log_w).view(1, -1, 1, 1)
        out[f"holdout {label}"] = float(score(logits, model.bin_centers, bias, rgb, t)["psnr"].mean())
        if films:
            out[f"films {label}"] = float(
                np.mean([float(score(fl, model.bin_centers, bias, fr, t)["psnr"].mean()) for fr, fl in films.values()])
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", type=Path, default=Path("pipelines/v2.toml"))
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("runs/hint-cost"))
    ap.add_argument(
        "--films",
        type=Path,
        default=Path("../shared/data/video-tune"),
        help="real colour clips (not the validation set)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    base = load_recipe(args.recipe)
    inits = paired_inits(base.model, base.train.seed, args.out)
    recipes = {
        name: arm_recipe(args.recipe, inits[name], name == "hints", args.steps, args.batch, args.out / name)
        for name in ARMS
    }
    train_arms(recipes, args.out)
    results = {name: scores(r, args.films) for name, r in recipes.items()}
    keys = [k for k in results["hints"] if k != "grey"]
    print(
        f"{args.steps} steps of {args.batch} crops (160²) per arm; automatic colour, no hints given; PSNR dB (grey "
        f"{results['hints']['grey']:.2f} on the holdout)"
    )
    print("| arm | " + " | ".join(keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |")
    print(
        "| hints − hint-free | "
        + " | ".join(f"{results['hints'][k] - results['hint-free'][k]:+.2f}" for k in keys)
        + " |"
    )
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "batch": args.batch, "results": results}, indent=2))


if __name__ == "__main__":
    main()
