"""Speed and memory of the shot stage (issue 12): the default run before and after, same input.

Input: the eight video-tune clips (DAVIS 2016 real footage, 854x480, 416 frames) joined into one
film with seven real cuts, desaturated (Y kept, neutral chroma, FFV1), optionally looped. Each run
is a fresh child process (start-up and model load included), default settings (x264 crf 18
medium), wall-clock fps and peak RSS (``ru_maxrss``); variants alternate ``--repeats`` times so a
drifting machine load hits them alike:

  two-way   this checkout's default (shots, two-way propagation, 16-frame look-ahead)
  one-way   this checkout with ``lookahead=0`` (forward only)
  before    the default of another checkout (``--before DIR``: e.g. ``git worktree add DIR <commit>``)

    nice python benchmarks/bench_shot_speed.py [--before /tmp/vidcolor-old] [--repeats 2] [--loops 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import av

CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video-tune"
REPO = Path(__file__).resolve().parent.parent

CHILD = """
import resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from vidcolor.settings import EncodeConfig, RenderConfig, TemporalConfig
from vidcolor.video.run import colorize_video
kwargs = {} if sys.argv[3] == "default" else {"lookahead": 0}
settings = RunSettings(temporal=TemporalConfig(**kwargs))
report = colorize_video(Path(sys.argv[1]), Path(sys.argv[2]), "default", settings, overwrite=True)
wall = time.perf_counter() - t0
print(report.frames, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def grey_film(dst: Path, loops: int) -> int:
    """All clips one after the other, ``loops`` times, Y kept and chroma neutral (FFV1)."""
    clips = sorted(CLIPS.glob("*.mp4"))
    n = 0
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
        for _ in range(loops):
            for clip in clips:
                with av.open(str(clip)) as inp:
                    for frame in inp.decode(video=0):
                        planes = frame.reformat(format="yuv420p").to_ndarray()
                        planes[frame.height :] = 128
                        grey = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                        grey.pts = n
                        n += 1
                        for p in stream.encode(grey):
                            out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return n


def run(src: Path, dst: Path, variant: str, repo: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(repo))
    mode = "one-way" if variant == "one-way" else "default"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(dst), mode], capture_output=True, text=True, env=env, cwd=repo
    )
    if out.returncode != 0:
        sys.exit(f"{variant} failed:\n{out.stderr[-2000:]}")
    frames, wall, rss = out.stdout.split()
    return int(frames) / float(wall), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="another checkout whose default run is measured as 'before'")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--loops", type=int, default=1)
    args = ap.parse_args()
    variants = {"two-way": REPO, "one-way": REPO}
    if args.before:
        variants["before"] = args.before.resolve()
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "film.mkv"
        frames = grey_film(src, args.loops)
        for r in range(args.repeats):
            for variant, repo in variants.items():
                fps, rss = run(src, Path(tmp) / "out.mp4", variant, repo)
                results[variant].append((fps, rss))
                print(f"repeat {r + 1}: {variant} {fps:.2f} fps, peak RSS {rss:.0f} MB", file=sys.stderr)
    print(f"| variant ({frames} frames 854x480, 7 cuts) | fps (median of {args.repeats}) | peak RSS (MB) |")
    print("| --- | --- | --- |")
    for variant, rows in results.items():
        print(f"| {variant} | {statistics.median(f for f, _ in rows):.2f} | {max(m for _, m in rows):.0f} |")


if __name__ == "__main__":
    main()
