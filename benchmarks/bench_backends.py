"""Compare model backends on one device: speed, and output against float32 eager.

Runs the colour model alone (no decode, temporal stage or encode) on real luma frames at the
render size of a WxH video (render factor from the model, 16 for the default), in batches, with
each backend of vidcolor.backends. For each: one-off preparation time (export, compilation),
steady-state ms per frame, and the difference from float32 eager on the same frames:
mean and 99.9th-percentile |ΔCbCr| in 8-bit code values and the PSNR of the composed RGB frame
(original luma + chroma), judged against vidcolor.backends.TOLERANCE.

The frames come from samples/clip.mp4 (real B&W footage) scaled to WxH. Without a registered
``default`` model a randomly initialised ``Generator()`` (same architecture, same speed) is used.

    python benchmarks/bench_backends.py [--model default] [--size 854x480] [--batch 8]
        [--backends eager,channels_last,bf16,onnx,compile] [--repeats 5] [--json out.json]

Prints a Markdown table (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.backends import TOLERANCE, prepare_backend
from vidcolor.color import ycbcr_to_rgb
from vidcolor.models.base import GeneratorModel, ModelInfo, render_shape, resize_luma

REPO = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def machine_busy() -> str:
    """What else shares the CPU: a running (not paused) training run, and the load average."""
    try:
        pids = subprocess.run(
            ["pgrep", "-f", "vidcolor train|_bg_train"], capture_output=True, text=True, check=False
        ).stdout.split()
    except OSError:
        pids = []
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "T":  # T: stopped (paused with SIGSTOP for a quiet measurement)
            running.append(pid)
    load = os.getloadavg()[0]
    if running:
        return f"CONTENDED: a training run is running (pids {' '.join(running)}); load average {load:.2f}"
    return f"no training run running; load average {load:.2f} (1 min)"


def load(spec: str, seed: int = 0):
    """The registered model, or a random Generator() when ``spec`` is 'random' or unregistered."""
    from vidcolor.errors import ModelError
    from vidcolor.models.registry import load_model

    if spec != "random":
        try:
            return load_model(spec), spec
        except ModelError:
            if spec != "default":
                raise
    from vidcolor.models.generator import Generator

    torch.manual_seed(seed)
    return GeneratorModel(Generator(), ModelInfo(name="random-generator")), "random Generator()"


def real_luma(clip: Path, size: tuple[int, int], frames: int) -> torch.Tensor:
    """``frames`` luma frames (B,1,H,W) in [0,1] of a real clip, spread over it, scaled to ``size``."""
    h, w = size
    with av.open(str(clip)) as c:
        all_y = [f.reformat(width=w, height=h, format="gray").to_ndarray() for f in c.decode(video=0)]
    pick = np.linspace(0, len(all_y) - 1, frames).round().astype(int)
    return torch.from_numpy(np.stack([all_y[i] for i in pick])).float().div(255).unsqueeze(1)


def compare(luma: torch.Tensor, ref: torch.Tensor, got: torch.Tensor) -> dict[str, float]:
    diff = (got.float() - ref.float()).abs() * 255.0
    rgb_ref = ycbcr_to_rgb(luma, ref.float())
    rgb_got = ycbcr_to_rgb(luma, got.float())
    mse = float((rgb_ref - rgb_got).square().mean())
    psnr = float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
    return {
        "mean_cv": float(diff.mean()),
        "p999_cv": float(torch.quantile(diff.flatten()[:: max(1, diff.numel() // 4_000_000)], 0.999)),
        "max_cv": float(diff.max()),
        "psnr_db": psnr,
    }


def within(stats: dict[str, float]) -> bool:
    t = TOLERANCE
    return (
        stats["mean_cv"] <= t.mean_code_values
        and stats["p999_cv"] <= t.p999_code_values
        and stats["psnr_db"] >= t.min_psnr_db
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model",
        default="default",
        help="registered name or .safetensors; 'random' or an unregistered default: Generator()",
    )
    ap.add_argument("--size", default="854x480", help="video size WxH whose render size is measured")
    ap.add_argument("--render-factor", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="timed batches per backend (after one warm-up batch)")
    ap.add_argument("--backends", default="eager,channels_last,bf16,onnx,compile")
    ap.add_argument("--clip", type=Path, default=REPO / "samples" / "clip.mp4")
    ap.add_argument("--threads", type=int, default=0, help="torch/ORT threads (0: torch's default)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    width, height = (int(v) for v in args.size.lower().split("x"))
    model, label = load(args.model)
    rf = args.render_factor or model.info.default_render_factor_video
    size = render_shape(height, width, rf, model.info.keep_aspect)
    luma = real_luma(args.clip, (height, width), args.batch)
    small = resize_luma(luma, size)

    rows = []
    ref = None
    for name in args.backends.split(","):
        fresh, _ = load(args.model)  # each backend gets its own copy (channels_last converts in place)
        fresh = fresh.to(torch.device("cpu"), torch.float32)
        t0 = time.perf_counter()
        wrapped, resolved = prepare_backend(fresh, name, torch.device("cpu"))
        prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = wrapped.predict_chroma(small)  # warm-up (and compilation for `compile`)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = wrapped.predict_chroma(small)
            times.append(time.perf_counter() - t0)
        ms = 1000 * float(np.median(times)) / args.batch
        if ref is None:
            if name != "eager":
                raise SystemExit("list eager first: it is the float32 reference")
            ref = out
        stats = compare(small, ref, out)
        rows.append(
            {
                "backend": resolved,
                "prepare_s": prep,
                "first_batch_s": first,
                "ms_per_frame": ms,
                "fps": 1000 / ms,
                **stats,
                "within_tolerance": bool(within(stats)),
            }
        )
        print(f"{resolved}: {ms:.1f} ms/frame", file=sys.stderr, flush=True)

    info = {
        "model": label,
        "video_size": f"{width}x{height}",
        "render_size": f"{size[0]}x{size[1]}",
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "tolerance": asdict(TOLERANCE),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {machine_busy()}")
    print(
        f"model {label}; {info['video_size']} video -> render {info['render_size']}; batch {args.batch}; "
        f"{info['threads']} threads; {info['cpu']}; torch {info['torch']}, onnxruntime {info.get('onnxruntime', '-')}"
    )
    print()
    print(
        "| backend | prepare s | first batch s | ms/frame | fps | mean abs dCbCr (code values) | p99.9 | max | "
        "composed PSNR dB | within tolerance |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['backend']} | {r['prepare_s']:.1f} | {r['first_batch_s']:.1f} | {r['ms_per_frame']:.1f} | "
            f"{r['fps']:.1f} | "
            f"{r['mean_cv']:.4f} | {r['p999_cv']:.3f} | {r['max_cv']:.3f} | {r['psnr_db']:.1f} | "
            f"{'yes' if r['within_tolerance'] else 'no'} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
