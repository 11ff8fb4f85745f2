"""Speed of DeOldify's generators (plain-PyTorch port) on this machine, random weights.

Times one frame (batch 1) through ``DeOldifyModel.predict_chroma`` at a square render size of
render_factor × 16 (default 21 → 336×336, DeOldify's video default): grey → ImageNet
normalisation → generator → chroma. Random weights cost the same as trained ones.

    OMP_NUM_THREADS=2 python benchmarks/bench_deoldify.py [--kinds artistic video] [--render-factor 21]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidcolor.models.deoldify import DeOldifyModel, build_generator, model_info, parameter_count


def other_load() -> str:
    """Whether the background training run shares the CPU (it skews every figure)."""
    try:
        out = subprocess.run(["pgrep", "-f", "_bg_train"], capture_output=True, text=True, check=False).stdout.split()
    except OSError:
        return "unknown (no pgrep)"
    mine = str(os.getpid())
    pids = [p for p in out if p != mine]
    return f"yes (pids {', '.join(pids)})" if pids else "no"


def bench(kind: str, render_factor: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = DeOldifyModel(build_generator(kind), model_info(kind, kind, ""))
    side = render_factor * 16
    luma = torch.rand(1, 1, side, side)
    # Warm-up (allocator, oneDNN kernel selection) doubling as a FLOP count: a figure that does
    # not depend on how busy the shared CPU is.
    with FlopCounterMode(display=False) as counter:
        model.predict_chroma(luma)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_chroma(luma)
        times.append(time.perf_counter() - t0)
    return {
        "kind": kind,
        "render": f"{side}x{side}",
        "parameters": parameter_count(model.generator.state_dict()),
        "gflop": counter.get_total_flops() / 1e9,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "runs": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["artistic", "video"], choices=["artistic", "stable", "video"])
    ap.add_argument("--render-factor", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    header = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "bg_train_running_at_start": other_load(),
        "load_average_at_start": os.getloadavg(),
    }
    results = [bench(kind, args.render_factor, args.repeats) for kind in args.kinds]
    header["bg_train_running_at_end"] = other_load()
    header["load_average_at_end"] = os.getloadavg()
    print(json.dumps(header))
    for r in results:
        print(
            f"{r['kind']:9s} {r['render']}  {r['parameters']:>11,} params  {r['gflop']:.0f} GFLOP  median "
            f"{r['median_s']:.2f} s/frame  (min {r['min_s']:.2f}, {r['runs']} runs)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
