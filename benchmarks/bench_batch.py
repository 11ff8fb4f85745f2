"""Batch engine overheads: scan/plan time, resume cost, engines, and the fingerprint hash.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_batch.py [--clips 8] [--photos 8]

Builds an archive of small generated clips (64x48, 12 frames, with sound) and photos, colours it
with a random-weight Generator at render factor 4 (so the model is a small share and the batch
machinery shows), and prints a Markdown table:
- a first run per engine (inline = in-process, local with 1 and 2 worker processes);
- a resumed run of the finished archive (every item up to date): the cost of resuming;
- hashing a 256 MiB file in full vs head+tail, the two fingerprint schemes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def write_reel(path: Path, seed: int, frames: int = 12) -> None:
    """A 64x48 clip of drifting colour noise with a second of 440 Hz stereo sound."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (48, 96, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i : i + 64]), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(48000) / 48000)).astype(np.float32)
        for start in range(0, 48000, 1024):
            chunk = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            out.mux(sound.encode(af))
        out.mux(sound.encode(None))


def build_archive(root: Path, clips: int, photos: int) -> Path:
    from PIL import Image

    src = root / "archive"
    src.mkdir()
    for i in range(clips):
        write_reel(src / f"reel{i:02d}.mp4", seed=i)
    rng = np.random.default_rng(0)
    for i in range(photos):
        Image.fromarray(rng.integers(0, 255, (96, 128), dtype=np.uint8)).save(src / f"photo{i:02d}.png")
    return src


def timed_run(src: Path, dst: Path, settings, options) -> tuple[float, object]:
    from vidcolor.jobs.runner import run_job

    t0 = time.perf_counter()
    report = run_job([src], dst, settings, options)
    return time.perf_counter() - t0, report


def hash_speed(root: Path) -> tuple[float, float]:
    from vidcolor.hashing import sha256_file
    from vidcolor.jobs.fingerprint import content_hash

    big = root / "big.bin"
    chunk = np.random.default_rng(1).integers(0, 255, 1 << 20, dtype=np.uint8).tobytes()
    with open(big, "wb") as f:
        for _ in range(256):
            f.write(chunk)
    size = big.stat().st_size
    t0 = time.perf_counter()
    sha256_file(big)
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert content_hash(big, size).startswith("ht:")
    head_tail = time.perf_counter() - t0
    return full, head_tail


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--photos", type=int, default=8)
    args = parser.parse_args()

    import torch

    from vidcolor.jobs.runner import JobOptions
    from vidcolor.jobs.settings import JobSettings
    from vidcolor.models.generator import Generator
    from vidcolor.models.weights import save_generator

    root = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        src = build_archive(root, args.clips, args.photos)
        torch.manual_seed(0)
        model = root / "model.safetensors"
        save_generator(Generator(), model)
        settings = JobSettings(model=str(model), render_factor=4, temporal=False, batch_size=4)
        items = args.clips + args.photos
        rows = []
        for label, options in (
            ("inline (--workers 0)", JobOptions(workers=0)),
            ("local, 1 worker", JobOptions(workers=1)),
            ("local, 2 workers", JobOptions(workers=2)),
        ):
            dst = root / label.split()[0].strip(",") / label.split()[-2]
            first, report = timed_run(src, dst, settings, options)
            assert report.count("done") == items, report.totals()
            resumes = []
            for _ in range(3):
                cpu0 = time.process_time()
                wall, report = timed_run(src, dst, settings, options)
                resumes.append((wall, time.process_time() - cpu0))
                assert report.count("up-to-date") == items
            rows.append((label, first, *sorted(resumes)[1]))  # the median of three
        full, head_tail = hash_speed(root)
        print(f"archive: {args.clips} clips (64x48, 12 frames, AAC) + {args.photos} photos (128x96), render factor 4")
        print("| engine | first run s | s / item | resume of the finished archive: wall s, CPU s |")
        print("| --- | --- | --- | --- |")
        for label, first, resume, resume_cpu in rows:
            print(f"| {label} | {first:.1f} | {first / items:.2f} | {resume:.2f}, {resume_cpu:.2f} |")
        print(f"\nsha256, 256 MiB file: full {full:.2f} s, head+tail (16 MiB) {head_tail:.3f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
