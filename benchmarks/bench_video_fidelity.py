"""What ``colorize_video`` keeps of a real clip: frames, timestamps, audio, luma; and that it colours.

Runs the pipeline three times on one clip (default: samples/clip.mp4, real B&W footage with an
AAC 5.1 track): default settings (libx264 crf 18, .mp4), ffv1 in .mkv, and libx264 crf 0, then
compares input and output by decoding both with PyAV.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_video_fidelity.py \
        [--clip PATH | --footage vtest] [--model PATH]

(``--footage vtest``: OpenCV's vtest.avi, 250 frames desaturated, H.264 + AAC; see footage.py.
benchmarks/bench_acceptance_video.py runs the same checks through the ``vidcolor run`` CLI.)

Without ``--model`` a randomly initialised ``Generator()`` is used (the shipped model may not exist
yet): fidelity does not depend on the weights; the chroma figures then only show that colour is
written, not that it is right.
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import footage
import numpy as np

from vidcolor.settings import RunSettings  # noqa: I001


def decode(path: Path) -> tuple[list[np.ndarray], list[Fraction], list[np.ndarray]]:
    ys, times, uvs = [], [], []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width] for p in f.planes]
            ys.append(planes[0].copy())
            uvs.append(np.stack(planes[1:3]).astype(np.int16))
            times.append(Fraction(f.pts) * s.time_base)
    return ys, times, uvs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=Path("samples/clip.mp4"))
    ap.add_argument(
        "--footage",
        choices=["vtest"],
        default=None,
        help="use benchmarks/footage.py's 250-frame B&W vtest clip with AAC audio instead of --clip",
    )
    ap.add_argument("--model", default=None, help="model spec (default: a random Generator)")
    ap.add_argument("--render-factor", type=int, default=8)
    args = ap.parse_args()
    if args.footage == "vtest":
        args.clip = footage.acceptance_clip(250)

    import torch

    from vidcolor.models.generator import Generator
    from vidcolor.models.registry import load_model
    from vidcolor.models.weights import save_generator
    from vidcolor.settings import EncodeConfig, RenderConfig, TemporalConfig
    from vidcolor.video.run import colorize_video

    tmp = Path(tempfile.mkdtemp(prefix="vidcolor-fidelity-"))
    spec = args.model
    if spec is None:
        torch.manual_seed(0)
        spec = str(tmp / "random.safetensors")
        save_generator(Generator(), spec)
    model = load_model(spec)
    render = RenderConfig(render_factor=args.render_factor)
    y_in, t_in, _ = decode(args.clip)
    a_in = footage.audio_packets(args.clip)
    print(f"input {args.clip}: {len(y_in)} frames, {len(a_in)} audio packets")
    print(
        "| run | frames | timestamps equal | audio packets identical | luma PSNR mean / min (dB) | luma bit-exact | "
        "|U-128|,|V-128| mean | fps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    runs = [
        ("libx264 crf 18 (default), .mp4", tmp / "default.mp4", EncodeConfig()),
        ("ffv1, .mkv", tmp / "ffv1.mkv", EncodeConfig(codec="ffv1")),
        ("libx264 crf 0, .mp4", tmp / "crf0.mp4", EncodeConfig(crf=0)),
    ]
    for label, out, encode in runs:
        report = colorize_video(
            args.clip, out, model, RunSettings(render=render, temporal=TemporalConfig(), encode=encode)
        )
        y_out, t_out, uv_out = decode(out)
        same_t = t_out == t_in
        if not same_t and out.suffix == ".mkv":  # Matroska shifts all streams by AAC's priming delay
            same_t = [t - t_out[0] for t in t_out] == [t - t_in[0] for t in t_in]
            same_t = "relative" if same_t else False
        values = [footage.plane_psnr(a, b) for a, b in zip(y_in, y_out)]
        exact = len(y_in) == len(y_out) and all(np.array_equal(a, b) for a, b in zip(y_in, y_out))
        chroma = float(np.mean([np.abs(uv - 128).mean() for uv in uv_out]))
        print(
            f"| {label} | {len(y_out)} | {same_t} | {footage.audio_packets(out) == a_in} | "
            f"{np.mean(values):.2f} / {min(values):.2f} | {exact} | {chroma:.2f} | {report.fps:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
