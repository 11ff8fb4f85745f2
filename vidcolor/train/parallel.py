"""Data-parallel training over CPU processes (``train.procs``): one process per core.

Two torch threads in one process scale badly on a shared 2-core machine; two single-threaded
processes that average their gradients (gloo all-reduce, see ``Trainer._average_gradients``) use
both cores. The parent decodes the image cache once (the ranks memory-map the same .npy file),
starts the ranks with torch.multiprocessing, and reads rank 0's result; only rank 0 writes files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vidcolor.media.outfile import OutputLock
from vidcolor.train.modes import build_trainer
from vidcolor.train.recipe import Recipe
from vidcolor.train.trainer import TrainResult

RENDEZVOUS_DIR = ".ddp"  # inside the run's folder


def prepare_cache(recipe: Recipe) -> None:
    """Decode the training images into the shared cache before any rank starts."""
    from vidcolor.train.data import load_or_build_cache
    from vidcolor.train.index import training_paths

    data = recipe.data
    if data.corpus:  # a packed corpus is decoded already
        return
    load_or_build_cache(
        training_paths(data.roots, data.index, data.verify_index, data.extra_index),
        data.cache_size,
        Path(data.cache_dir),
        data.filter,
        data.workers,
    )


def _plain_log(row: dict[str, Any]) -> None:
    keys = ("loss", "lr", "images_per_s", "holdout_psnr", "gray_psnr", "holdout_hint10_psnr")
    parts = [f"step {row['step']}"] + [f"{k} {row[k]:.4g}" for k in keys if isinstance(row.get(k), float)]
    print("  ".join(parts), flush=True)


def _rank_main(rank: int, world: int, recipe: Recipe, init_file: str, result_file: str, quiet: bool) -> None:
    torch.set_num_threads(max(1, recipe.train.threads))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        log = None if quiet or rank != 0 else _plain_log
        trainer = build_trainer(recipe, log=log)
        if rank == 0 and not quiet and trainer.steps_done:
            print(f"resuming {trainer.out} at step {trainer.steps_done} of {trainer.total_steps}", flush=True)
        result = trainer.run()
        if rank == 0:
            Path(result_file).write_text(json.dumps({**result.__dict__, "weights": str(result.weights)}))
    finally:
        dist.destroy_process_group()


def run_data_parallel(recipe: Recipe, quiet: bool = False) -> TrainResult:
    """Train ``recipe`` on ``recipe.train.procs`` processes; returns rank 0's result.

    The run's folder is locked for the whole run (a second run into it is refused at once), and
    the ranks meet through a file in ``OUT/.ddp``: a run killed mid-way (a session's end) leaves
    it there, not in /tmp, and the next run into the folder starts it afresh (gloo's file
    rendezvous must not find an old file)."""
    procs = recipe.train.procs
    # Each rank is single-threaded unless the recipe says otherwise.
    recipe = replace(recipe, train=replace(recipe.train, threads=recipe.train.threads or 1))
    # Absolute: the rendezvous is a file:// URL, where a relative "runs/v3/..." reads "runs" as the host.
    out = Path(recipe.train.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out):
        prepare_cache(recipe)
        meeting = out / RENDEZVOUS_DIR
        shutil.rmtree(meeting, ignore_errors=True)
        meeting.mkdir()
        try:
            init_file, result_file = str(meeting / "init"), str(meeting / "result.json")
            mp.spawn(_rank_main, args=(procs, recipe, init_file, result_file, quiet), nprocs=procs, join=True)
            raw = json.loads(Path(result_file).read_text())
        finally:
            shutil.rmtree(meeting, ignore_errors=True)
    raw["weights"] = Path(raw["weights"])
    return TrainResult(**raw)
