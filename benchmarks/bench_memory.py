"""Peak memory of ``vidcolor run`` on a long input vs a short one: it must not grow with length.

Generates two 854x480 25 fps H.264 clips with stereo AAC audio (30 s and 10 min by default),
saves a tiny randomly initialised generator, then runs ``vidcolor run`` on each in a fresh child
process and reads the child's peak RSS (``os.wait4``'s ru_maxrss). The decode and encode queues
and the batch size bound memory; this measures that they do.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_memory.py [--long 600] [--short 30]

Prints a Markdown table row per run (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS, RATE = 854, 480, 25, 48000


def make_input(path: Path, seconds: int) -> Path:
    """A moving grey pattern (a B&W 'film') with a 440 Hz tone, muxed as it is generated."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.codec_context.time_base = Fraction(1, FPS)
    video.options = {"preset": "ultrafast", "crf": "23"}
    audio = out.add_stream("aac", rate=RATE, layout="stereo")
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = ((xx // 40 + yy // 40) % 2 * 120 + 60).astype(np.uint8)
    chroma = np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8)
    sample = 0
    for i in range(seconds * FPS):
        y = np.roll(base, 3 * i, axis=1)
        y[:, (5 * i) % WIDTH] = 235
        frame = av.VideoFrame.from_ndarray(
            np.concatenate([y, chroma.reshape(HEIGHT // 4, WIDTH), chroma.reshape(HEIGHT // 4, WIDTH)]), "yuv420p"
        )
        frame.pts = i
        for p in video.encode(frame):
            out.mux(p)
        # audio up to this frame's end, so the file is interleaved like a real one
        end = (i + 1) * RATE // FPS
        while sample + 1024 <= end:
            t = np.arange(sample, sample + 1024) / RATE
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = RATE, sample
            for p in audio.encode(af):
                out.mux(p)
            sample += 1024
    for stream in (video, audio):
        for p in stream.encode(None):
            out.mux(p)
    out.close()
    return path


def run_child(args: list[str]) -> tuple[float, float, int]:
    """Run ``vidcolor run ...`` in a child; (peak RSS MiB, wall seconds, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", "run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(err, file=sys.stderr)
    return usage.ru_maxrss / 1024.0, wall, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", type=int, default=30, help="short input, seconds")
    ap.add_argument("--long", type=int, default=600, help="long input, seconds")
    ap.add_argument("--render-factor", default="4")
    ap.add_argument("--batch-size", default="8")
    ap.add_argument("--keyframe-interval", default="4")
    ap.add_argument("--workdir", type=Path, default=None, help="keep inputs here (default: a temp dir)")
    args = ap.parse_args()

    import torch

    from vidcolor.models.generator import Generator
    from vidcolor.models.weights import save_generator

    tmp = tempfile.TemporaryDirectory(prefix="vidcolor-bench-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny.safetensors"
    torch.manual_seed(0)
    save_generator(Generator(), model)
    common = [
        "--model",
        str(model),
        "--render-factor",
        args.render_factor,
        "--batch-size",
        args.batch_size,
        "--keyframe-interval",
        args.keyframe_interval,
        "--preset",
        "ultrafast",
        "--quiet",
        "--overwrite",
    ]
    print("| input | frames | peak RSS (MiB) | wall (s) | fps |")
    print("|---|---|---|---|---|")
    results = {}
    for label, seconds in (("short", args.short), ("long", args.long)):
        src = work / f"{label}-{seconds}s.mp4"
        if not src.exists():
            t0 = time.perf_counter()
            make_input(src, seconds)
            print(f"<!-- generated {src.name} in {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)
        rss, wall, code = run_child([str(src), str(work / f"{label}-out.mp4"), *common])
        if code != 0:
            raise SystemExit(f"vidcolor run failed on {src.name} (exit {code})")
        frames = seconds * FPS
        results[label] = rss
        print(f"| {seconds} s {WIDTH}x{HEIGHT} | {frames} | {rss:.0f} | {wall:.0f} | {frames / wall:.1f} |", flush=True)
    growth = (results["long"] - results["short"]) / results["short"] * 100
    print(f"\nlong vs short peak RSS: {growth:+.1f}% (acceptance: within 10%)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
