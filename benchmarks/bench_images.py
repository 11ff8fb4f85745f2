"""Still-image mode: throughput of ``colorize_images`` one by one vs batched, and luma fidelity.

Input: the three B&W photos in samples/photos (600x400, 451x300, 640x427), each repeated
``--copies`` times. All three map to the same render size, so they batch together.
Model: a randomly initialised ``Generator()`` (the shipped architecture: speed does not depend
on the weights) unless ``--model`` names a registered model or a .safetensors file.
Reports wall and CPU time per picture for batch sizes 1 and ``--batch`` (read + model + compose +
write; CPU time is the steadier figure on a shared machine),
and the largest difference between the input luma and the output's BT.601 luma, in 8-bit steps
(the output keeps the input's luma: only rounding to 8 bits should remain).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_images.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidcolor.colorizer import Colorizer
from vidcolor.models.generator import Generator
from vidcolor.models.registry import load_model
from vidcolor.models.weights import save_generator
from vidcolor.settings import RenderConfig
from vidcolor.stills import colorize_images

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "photos"


def run(jobs: list[tuple[Path, Path]], colorizer: Colorizer) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for the whole job list."""
    start, cpu = time.perf_counter(), time.process_time()
    results = list(colorize_images(jobs, colorizer, overwrite=True))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="registered name or .safetensors (default: random Generator)")
    ap.add_argument("--render-factor", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--copies", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec = args.model
        if spec is None:
            spec = str(tmp_path / "random.safetensors")
            save_generator(Generator(), spec)
        model = load_model(spec)
        photos = sorted(SAMPLES.iterdir())
        jobs = [(p, tmp_path / "out" / f"{i}_{p.name}") for i in range(args.copies) for p in photos]
        figures = {}
        for batch in (1, args.batch):
            colorizer = Colorizer(
                model, RenderConfig(render_factor=args.render_factor, batch_size=batch, device="cpu"), video=False
            )
            run(jobs[:1], colorizer)  # warm-up
            elapsed, cpu = run(jobs, colorizer)
            figures[f"batch_{batch}_wall_s_per_image"] = round(elapsed / len(jobs), 3)
            figures[f"batch_{batch}_cpu_s_per_image"] = round(cpu / len(jobs), 3)
        worst = 0.0
        for src, dst in jobs[: len(photos)]:
            grey = np.asarray(Image.open(src).convert("L"), dtype=np.float64)
            rgb = np.asarray(Image.open(dst).convert("RGB"), dtype=np.float64)
            luma = rgb @ np.array([0.299, 0.587, 0.114])
            if Image.open(dst).format == "PNG":  # lossless output: only rounding may differ
                worst = max(worst, float(np.abs(luma - grey).max()))
        figures["png_max_luma_error_8bit_steps"] = round(worst, 3)
        figures.update(images=len(jobs), render_factor=args.render_factor, threads=torch.get_num_threads())
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
