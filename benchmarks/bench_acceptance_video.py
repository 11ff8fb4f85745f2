"""Issue 2 acceptance on real footage: ``vidcolor run`` on a 250-frame B&W clip with AAC audio.

Input: ``footage.acceptance_clip(250)`` (OpenCV's vtest.avi, people walking, 768x576 10 fps,
desaturated, H.264 crf 18 + generated stereo AAC; see benchmarks/footage.py). The real CLI is run
in a child process three times: default settings (.mp4), ``--codec ffv1`` (.mkv) and ``--crf 0``
(.mp4). Each output is decoded with PyAV and compared with the input:

- same frame count and timestamps (Matroska shifts every stream by AAC's priming delay, so for
  .mkv timestamps are compared relative to the first frame, and reported as such);
- audio packets byte-identical, in order;
- luma PSNR against the input, mean and worst frame (bar: >= 45 dB at default quality);
- luma bit-exact for ffv1 and crf 0;
- chroma written: mean |U-128|, |V-128|, and a PNG contact sheet of input / output frames.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_acceptance_video.py --model default \
        --sheet benchmarks/acceptance_sheet.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import footage
import numpy as np

PSNR_BAR = 45.0


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    return [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width] for p in frame.planes]


def decode(path: Path, keep: set[int]) -> tuple[list[np.ndarray], list[Fraction], list[float], dict[int, np.ndarray]]:
    """Luma planes, timestamps (s), mean chroma offset per frame, and RGB of the frames in ``keep``."""
    ys, times, chroma, rgb = [], [], [], {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for i, f in enumerate(c.decode(s)):
            p = planes(f)
            ys.append(p[0].copy())
            chroma.append(float(np.mean([np.abs(q.astype(np.int16) - 128).mean() for q in p[1:3]])))
            times.append(Fraction(f.pts) * s.time_base)
            if i in keep:
                rgb[i] = f.to_ndarray(format="rgb24")
    return ys, times, chroma, rgb


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], width: int = 256) -> np.ndarray:
    out = []
    for label, frames in rows:
        tiles = [
            cv2.resize(f, (width, round(f.shape[0] * width / f.shape[1])), interpolation=cv2.INTER_AREA) for f in frames
        ]
        row = np.ascontiguousarray(np.concatenate(tiles, axis=1))
        cv2.putText(row, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        out.append(row)
    return np.concatenate(out, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--model", default="default", help="model spec for `vidcolor run --model`")
    ap.add_argument("--render-factor", type=int, default=None)
    ap.add_argument("--sheet", type=Path, default=None, help="write a PNG contact sheet here")
    ap.add_argument("--sheet-frames", type=int, nargs="*", default=[0, 80, 160, 249])
    ap.add_argument("--only-default", action="store_true", help="run only the default-settings case")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    clip = footage.acceptance_clip(args.frames)
    keep = {i for i in args.sheet_frames if i < args.frames}
    y_in, t_in, c_in, rgb_in = decode(clip, keep)
    a_in = footage.audio_packets(clip)
    print(
        f"input {clip.relative_to(footage.ROOT)}: {len(y_in)} frames, {len(a_in)} AAC packets, mean chroma offset "
        f"{np.mean(c_in):.2f}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="vidcolor-accept-"))
    cases = [("default (libx264 crf 18), .mp4", "default.mp4", [])]
    if not args.only_default:
        cases += [
            ("--codec ffv1, .mkv", "ffv1.mkv", ["--codec", "ffv1"]),
            ("--crf 0, .mp4", "crf0.mp4", ["--crf", "0"]),
        ]
    results = []
    sheet_rows = [("input (B&W)", [rgb_in[i] for i in sorted(keep)])]
    print(
        "| run | frames | timestamps equal | audio packets identical | luma PSNR mean / worst (dB) | luma bit-exact | "
        "mean abs(U-128),abs(V-128) | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, name, extra in cases:
        out = tmp / name
        cmd = [sys.executable, "-m", "vidcolor", "run", str(clip), str(out), "--model", args.model, "--quiet"] + extra
        if args.render_factor:
            cmd += ["--render-factor", str(args.render_factor)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
        y_out, t_out, c_out, rgb_out = decode(out, keep)
        same_t: bool | str = t_out == t_in
        if not same_t and out.suffix == ".mkv":
            same_t = "relative" if [t - t_out[0] for t in t_out] == [t - t_in[0] for t in t_in] else False
        values = [footage.plane_psnr(a, b) for a, b in zip(y_in, y_out)]
        exact = len(y_in) == len(y_out) and all(np.array_equal(a, b) for a, b in zip(y_in, y_out))
        r = {
            "run": label,
            "command": " ".join(["vidcolor"] + cmd[3:]),
            "frames": len(y_out),
            "timestamps_equal": same_t,
            "audio_identical": footage.audio_packets(out) == a_in,
            "luma_psnr_mean": float(np.mean([min(v, 100.0) for v in values])) if not exact else float("inf"),
            "luma_psnr_worst": float(min(values)),
            "worst_frame": int(np.argmin(values)),
            "luma_bit_exact": exact,
            "chroma_offset": float(np.mean(c_out)),
            "wall_s": wall,
        }
        results.append(r)
        print(
            f"| {label} | {r['frames']} | {same_t} | {r['audio_identical']} | {r['luma_psnr_mean']:.2f} / "
            f"{r['luma_psnr_worst']:.2f} (frame {r['worst_frame']}) | {exact} | {r['chroma_offset']:.2f} | {wall:.0f} "
            "|",
            flush=True,
        )
        if name == "default.mp4":
            sheet_rows.append((f"output ({args.model})", [rgb_out[i] for i in sorted(keep)]))
    d = results[0]
    verdict = {
        "frames_and_timestamps": all(r["frames"] == len(y_in) and r["timestamps_equal"] for r in results),
        "audio_identical": all(r["audio_identical"] for r in results),
        "luma_psnr_default_mean_ge_45": d["luma_psnr_mean"] >= PSNR_BAR,
        "luma_psnr_default_worst_ge_45": d["luma_psnr_worst"] >= PSNR_BAR,
        "bit_exact_ffv1_and_crf0": all(r["luma_bit_exact"] for r in results[1:]) if len(results) > 1 else None,
    }
    print(json.dumps(verdict))
    if args.sheet:
        image = contact_sheet(sheet_rows)
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.sheet), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"contact sheet: {args.sheet}")
    if args.json:
        args.json.write_text(
            json.dumps({"clip": str(clip), "results": results, "verdict": verdict}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
