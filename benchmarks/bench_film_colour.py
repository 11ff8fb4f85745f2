"""Colour on real film (issue 11): the video-tune clips desaturated, coloured by `vidcolor run`'s
code path with default settings, and compared with their true colour.

For each clip of ``../shared/data/video-tune`` (DAVIS 2016, real camera footage): the Y plane is
kept bit for bit and Cb = Cr = 128 (FFV1, lossless) as the black-and-white input; each model then
runs through ``colorize_video`` with default render, temporal and encode settings (x264 crf 18).
PSNR (RGB, 8-bit, per frame then averaged) against the original's frames, and the grey input's
own PSNR as the baseline. A contact sheet (grey | models... | truth, the first and last frame of
every clip) is written to benchmarks/film_sheet.png.

    nice python benchmarks/bench_film_colour.py [--models vidcolor-lite0-cls vidcolor-lite0-cls-v2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from footage import rgb_frames
from PIL import Image, ImageDraw

from vidcolor import metrics
from vidcolor.models.registry import load_model
from vidcolor.settings import (
    EncodeConfig,
    RenderConfig,
    RunSettings,  # noqa: I001
    TemporalConfig,
)
from vidcolor.video.run import colorize_video

CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video-tune"
TILE = (214, 120)


def desaturate(src: Path, dst: Path) -> Path:
    """The clip with its Y plane kept and neutral chroma, as lossless FFV1 (same tags and timing)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("ffv1", rate=vin.average_rate)
        vs.width, vs.height, vs.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vs.codec_context.time_base = vin.time_base
        ctx = vs.codec_context
        ctx.color_range, ctx.colorspace = vin.codec_context.color_range, vin.codec_context.colorspace
        for frame in inp.decode(vin):
            planes = frame.reformat(format="yuv420p").to_ndarray()  # (H*3/2, W): Y rows, then U and V
            planes[frame.height :] = 128
            grey = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            grey.pts, grey.time_base = frame.pts, frame.time_base
            grey.color_range, grey.colorspace = frame.color_range, frame.colorspace
            for p in vs.encode(grey):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return dst


def mean_psnr(frames: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(np.mean([metrics.psnr_uint8(a, b) for a, b in zip(frames, truth, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["vidcolor-lite0-cls", "vidcolor-lite0-cls-v2"])
    ap.add_argument("--clips", type=Path, default=CLIPS)
    ap.add_argument("--sheet", type=Path, default=Path(__file__).resolve().parent / "film_sheet.png")
    args = ap.parse_args()
    clips = sorted(args.clips.glob("*.mp4"))
    if not clips:
        sys.exit(f"no clips under {args.clips}")
    models = {name: load_model(name) for name in args.models}
    rows, tiles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            truth = rgb_frames(clip)
            grey_path = desaturate(clip, Path(tmp) / f"{clip.stem}-grey.mkv")
            grey = rgb_frames(grey_path)
            row = {"clip": clip.stem, "grey": mean_psnr(grey, truth)}
            outs = {}
            for j, (name, model) in enumerate(models.items()):
                out = Path(tmp) / f"{clip.stem}-{j}.mp4"  # by number: a model's name may be a path
                t0 = time.perf_counter()
                colorize_video(
                    grey_path,
                    out,
                    model,
                    RunSettings(render=RenderConfig(), temporal=TemporalConfig(), encode=EncodeConfig()),
                )
                outs[name] = rgb_frames(out)
                row[name] = mean_psnr(outs[name], truth)
                row[name + " s"] = time.perf_counter() - t0
            rows.append(row)
            for k in (0, len(truth) - 1):
                tiles.append([grey[k], *(outs[n][k] for n in models), truth[k]])
            print(
                f"{clip.stem}: grey {row['grey']:.2f} dB, "
                + ", ".join(f"{n} {row[n] - row['grey']:+.2f} dB" for n in models),
                file=sys.stderr,
            )
    names = list(models)
    print("| clip | grey PSNR | " + " | ".join(f"{n} vs grey" for n in names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    for r in rows:
        print(
            f"| {r['clip']} | {r['grey']:.2f} dB | " + " | ".join(f"{r[n] - r['grey']:+.2f} dB" for n in names) + " |"
        )
    print(
        f"| **mean** | {np.mean([r['grey'] for r in rows]):.2f} dB | "
        + " | ".join(f"**{np.mean([r[n] - r['grey'] for r in rows]):+.2f} dB**" for n in names)
        + " |"
    )
    cols = 2 + len(names)
    sheet = Image.new("RGB", (cols * (TILE[0] + 4), 18 + len(tiles) * (TILE[1] + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(["grey", *names, "truth"]):
        draw.text((j * (TILE[0] + 4) + 4, 3), label, fill=(0, 0, 0))
    for i, row_tiles in enumerate(tiles):
        for j, tile in enumerate(row_tiles):
            sheet.paste(
                Image.fromarray(tile).resize(TILE, Image.Resampling.BOX), (j * (TILE[0] + 4), 18 + i * (TILE[1] + 4))
            )
    sheet.save(args.sheet, optimize=True)
    print(f"\ncontact sheet: {args.sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
