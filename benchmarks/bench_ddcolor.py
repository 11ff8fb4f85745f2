"""DDColor in vidcolor's film pipeline: seconds a frame on this CPU, and flicker beside our model.

Speed: ``vidcolor run samples/clip.mp4`` (640×360, 25 fps; samples/README.md) with DDColor's tiny
and large networks (seeded weights in the published layout: random weights cost what trained
ones cost) at input 256 and 512 (``--render-factor`` 16 and 32), every frame (the first
``--frames`` frames, eager PyTorch and ONNX Runtime) and ``--keyframe-interval auto`` (the whole
film). Seconds a frame = the run's wall time / frames (ONNX Runtime's one-off export of the graph
is shown apart and left out), so a 10-minute film at 25 fps takes 15,000 × that.

Flicker: ``vidcolor eval-video`` (E_warp, colour E_warp, CDC; flow on the B&W input) of the whole
sample film coloured by DDColor tiny (256, temporal stage on and off) and by vidcolor's default
model. With random DDColor weights the colour itself means nothing; what the figures show is
what the temporal stage does to a frame-by-frame model's flicker.

    python benchmarks/bench_ddcolor.py [--frames 24] [--threads 2] [--skip-speed] [--skip-flicker]

Pause the background training first (it shares the two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vidcolor.models.ddcolor.seeded import published_layout, seeded_state

ROOT = Path(__file__).resolve().parent.parent
FILM = ROOT / "samples" / "clip.mp4"
FILM_FRAMES = 132


def vidcolor(*args: str, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([sys.executable, "-m", "vidcolor", *args], check=True, env=env, cwd=ROOT)


def timed_run(weights: Path, out: Path, rf: int, backend: str, extra: list[str], threads: int) -> dict:
    report = out.with_suffix(".json")
    vidcolor(
        "run",
        str(FILM),
        str(out),
        "--model",
        f"ddcolor:{weights}",
        "-r",
        str(rf),
        "--backend",
        backend,
        "--quiet",
        "-y",
        "--report",
        str(report),
        *extra,
        threads=threads,
    )
    data = json.loads(report.read_text())
    return {
        "frames": data["frames"],
        "run_wall": data["seconds"]["wall"],
        "model": data["seconds"]["model"],
    }


def export_seconds(weights: Path, rf: int, threads: int) -> float:
    """ONNX Runtime's one-off cost: export the network for the square and build the session."""
    from vidcolor.colorizer import Colorizer
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig

    torch.set_num_threads(threads)
    colorizer = Colorizer(load_model(f"ddcolor:{weights}"), RenderConfig(render_factor=rf, backend="onnx"))
    t0 = time.perf_counter()
    colorizer.model.generator.session((3, rf * 16, rf * 16))
    return time.perf_counter() - t0


def speed(work: Path, args: argparse.Namespace) -> None:
    print(f"\nSpeed, `vidcolor run` on {FILM.name} (640x360), OMP_NUM_THREADS={args.threads}")
    print("| network | input | mode | backend | frames | s/frame | 10-min film (25 fps) | ONNX export s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in ("tiny", "large"):
        weights = work / f"ddcolor_{size}.pth"
        torch.save(published_layout(seeded_state(size)), weights)
        for rf in (16, 32):
            export = export_seconds(weights, rf, args.threads)
            for mode, extra, backends in (
                ("every frame", ["--frames", f"0:{args.frames}"], ("eager", "onnx")),
                ("keyframes auto", ["--keyframe-interval", "auto"], ("onnx",)),
            ):
                for backend in backends:
                    r = timed_run(weights, work / f"{size}-{rf}.mp4", rf, backend, extra, args.threads)
                    # The run's own wall time includes the export for onnx: take it out.
                    seconds = r["run_wall"] - (export if backend == "onnx" else 0.0)
                    per = seconds / r["frames"]
                    film = per * 15000 / 60
                    shown = f"{export:.1f}" if backend == "onnx" else ""
                    print(
                        f"| {size} | {rf * 16} | {mode} | {backend} | {r['frames']} | {per:.2f} | {film:.0f} min | "
                        f"{shown} |",
                        flush=True,
                    )
        weights.unlink()


def flicker(work: Path, args: argparse.Namespace) -> None:
    weights = work / "ddcolor_tiny.pth"
    torch.save(published_layout(seeded_state("tiny")), weights)
    runs = {
        "vidcolor default (v2), temporal on": ["--model", "default"],
        "DDColor tiny 256, temporal on": ["--model", f"ddcolor:{weights}", "-r", "16"],
        "DDColor tiny 256, --no-temporal": ["--model", f"ddcolor:{weights}", "-r", "16", "--no-temporal"],
    }
    print(f"\nFlicker on the whole {FILM.name} ({FILM_FRAMES} frames), `vidcolor eval-video --input {FILM.name}`")
    print("| run | E_warp | colour E_warp | CDC |")
    print("| --- | --- | --- | --- |")
    for i, (label, extra) in enumerate(runs.items()):
        out = work / f"flicker-{i}.mp4"
        vidcolor("run", str(FILM), str(out), "--quiet", "-y", *extra, threads=args.threads)
        report = work / f"flicker-{i}.json"
        vidcolor("eval-video", str(out), "--input", str(FILM), "--report", str(report), threads=args.threads)
        scores = json.loads(report.read_text())
        print(f"| {label} | {scores['ewarp']:.6f} | {scores['ewarp_colour']:.6f} | {scores['cdc']:.6f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24, help="frames of the every-frame runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-flicker", action="store_true")
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-ddcolor-") as tmp:
        work = Path(tmp)
        if not args.skip_speed:
            speed(work, args)
        if not args.skip_flicker:
            flicker(work, args)


if __name__ == "__main__":
    main()
