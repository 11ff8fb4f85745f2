"""DDColor in vidcolor's film pipeline: seconds a frame on this CPU, and flicker beside our model.

Speed: ``vidcolor run samples/clip.mp4`` (640×360, 25 fps; samples/README.md) with DDColor's tiny
and large networks (seeded weights in the published layout: random weights cost what trained
ones cost) at input 256 and 512 (``--render-factor`` 16 and 32), every frame (the first
``--frames`` frames, eager PyTorch and ONNX Runtime) and ``--keyframe-interval auto`` (the whole
film). Seconds a frame in steady state: the difference of two runs' wall times (4 and ``--frames``
frames) over the difference of their frames, so the start (reading the file, ONNX Runtime's
one-off export) is shown apart; a 10-minute film at 25 fps takes 15,000 × that, plus the start.

Flicker: ``vidcolor eval-video`` (E_warp, colour E_warp, CDC; flow on the B&W input) of the whole
sample film coloured by DDColor tiny (256, temporal stage on and off) and by vidcolor's default
model. With random DDColor weights the colour itself means nothing; what the figures show is
what the temporal stage does to a frame-by-frame model's flicker.

    python benchmarks/bench_ddcolor.py [--frames 20] [--threads 2] [--skip-speed] [--skip-flicker]

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


def speed(work: Path, args: argparse.Namespace) -> None:
    short, long = 4, args.frames
    print(f"\nSpeed, `vidcolor run` on {FILM.name} (640x360), OMP_NUM_THREADS={args.threads}")
    print(
        f"s/frame every frame: (wall of frames 0:{long} - wall of 0:{short}) / {long - short}, the start (loading the "
        "file, ONNX Runtime's export) left out; keyframes auto: the whole film's wall less that start, / frames"
    )
    print("| network | input | mode | backend | s/frame | 10-min film (25 fps) | start s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    from vidcolor.models.onnx_network import MAX_EXPORT_WORK

    for size in args.sizes:
        weights = work / f"ddcolor_{size}.pth"
        torch.save(published_layout(seeded_state(size)), weights)
        parameters = sum(v.numel() for v in seeded_state(size).values())
        for rf in args.render_factors:
            onnx_ok = parameters * (rf * 16) ** 2 <= MAX_EXPORT_WORK * 1.01  # the refusal in onnx_network
            for backend in ("eager", "onnx") if onnx_ok else ("eager",):
                walls = {
                    n: timed_run(weights, work / f"{size}-{rf}.mp4", rf, backend, ["--frames", f"0:{n}"], args.threads)
                    for n in (short, long)
                }
                per = (walls[long]["run_wall"] - walls[short]["run_wall"]) / (long - short)
                start = max(0.0, walls[short]["run_wall"] - short * per)
                rows = [("every frame", per)]
                if backend == ("onnx" if onnx_ok else "eager"):
                    auto = ["--keyframe-interval", "auto"]
                    kf = timed_run(weights, work / f"{size}-{rf}.mp4", rf, backend, auto, args.threads)
                    rows.append(("keyframes auto", (kf["run_wall"] - start) / kf["frames"]))
                for mode, seconds in rows:
                    print(
                        f"| {size} | {rf * 16} | {mode} | {backend} | {seconds:.2f} | {seconds * 15000 / 60:.0f} min | "
                        f"{start:.1f} |",
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
    ap.add_argument("--frames", type=int, default=20, help="frames of the longer every-frame run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "large"])
    ap.add_argument("--render-factors", nargs="+", type=int, default=[16, 32])
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
