"""Shots, two-way propagation and references on real footage with scene cuts (issue 12).

Films: the eight video-tune clips (DAVIS 2016, real camera footage) joined in pairs, so each film
has one real scene cut (blackswan|cows, car-roundabout|dance-twirl, drift-straight|kite-surf,
paragliding-launch|parkour). Each film's truth is its decoded colour frames (FFV1, lossless);
its black-and-white input keeps the Y plane bit for bit with neutral chroma (FFV1).

Variants, all through ``colorize_video`` with the default model and encode settings:
  per-frame   --no-temporal
  one-way     the temporal stage looking one frame back only (lookahead 0: the stage before issue 12)
  two-way     the default (shots, two-way propagation over the look-ahead)
  reference   the default, with the TRUE colour of each shot's first frame given as a reference

Scores (vidcolor.metrics; flow from the input's luma, computed once per film and shared): chroma
E_warp (BT.601 Cb/Cr), CDC, mean PSNR vs truth, PSNR over the last second of each shot; the
truth's own chroma E_warp and CDC; fps of each run (wall clock, whole pipeline).

    nice python benchmarks/bench_shots.py [--clips DIR] [--memory]

``--tune '{"name": {TemporalConfig fields}, ...}'`` instead compares temporal-stage settings on
the same films quickly (model predictions and metric flow computed once per film and cached under
--cache; output composed at full size from the render-size chroma, as the pipeline does, without
encoding): chroma E_warp against the truth's and per-frame's, CDC against the truth's (and a grey
film's, the CDC of no colour at all), PSNR. This is how the stage's defaults were chosen.

``--memory`` instead measures peak RSS of the default run on a generated 768x576 film of 250
and of 1000 frames (each run in a fresh process): flat in film length means the same peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from footage import rgb_frames
from PIL import Image

from vidcolor import metrics
from vidcolor.color import rgb_to_chroma, rgb_to_luma
from vidcolor.flow import FlowEstimator
from vidcolor.models.registry import load_model
from vidcolor.settings import EncodeConfig, RenderConfig, RunSettings, TemporalConfig
from vidcolor.video.anchors import AnchorFiles  # noqa: I001
from vidcolor.video.run import colorize_video

CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video-tune"
PAIRS = [
    ("blackswan", "cows"),
    ("car-roundabout", "dance-twirl"),
    ("drift-straight", "kite-surf"),
    ("paragliding-launch", "parkour"),
]


@dataclass
class Film:
    name: str
    grey: Path
    truth: list[np.ndarray]  # RGB frames
    cut: int  # first frame of the second shot
    fps: float


def join(clips: list[Path], grey_path: Path) -> tuple[list[np.ndarray], int, float]:
    """Decode the clips one after the other; write the grey input; return truth frames, cut, fps."""
    truth: list[np.ndarray] = []
    cut = 0
    with av.open(str(grey_path), "w") as out:
        stream = None
        for k, clip in enumerate(clips):
            with av.open(str(clip)) as inp:
                vin = inp.streams.video[0]
                if stream is None:
                    stream = out.add_stream("ffv1", rate=vin.average_rate)
                    stream.width, stream.height, stream.pix_fmt = (
                        vin.codec_context.width,
                        vin.codec_context.height,
                        "yuv420p",
                    )
                    stream.codec_context.color_range, stream.codec_context.colorspace = (
                        vin.codec_context.color_range,
                        vin.codec_context.colorspace,
                    )
                    rate = float(vin.average_rate)
                if k == 1:
                    cut = len(truth)
                for frame in inp.decode(vin):
                    truth.append(frame.to_ndarray(format="rgb24"))
                    planes = frame.reformat(format="yuv420p").to_ndarray()
                    planes[frame.height :] = 128
                    grey = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                    grey.pts = len(truth) - 1
                    grey.color_range, grey.colorspace = frame.color_range, frame.colorspace
                    for p in stream.encode(grey):
                        out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return truth, cut, rate


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def scores(
    films_frames: dict[str, list[np.ndarray]], grey: list[np.ndarray], truth: list[np.ndarray], cut: int, fps: float
) -> dict[str, dict]:
    """Per variant: chroma E_warp, CDC, PSNR, PSNR over each shot's last second; geometry shared."""
    estimator = FlowEstimator(metrics.METRIC_FLOW)
    names = list(films_frames)
    ew = {n: [] for n in names}
    cdc = {n: metrics.ColourConsistency() for n in names}
    per_psnr = {n: [] for n in names}
    prev_luma = None
    last = int(round(fps))
    tails = [range(max(0, cut - last), cut), range(max(cut, len(truth) - last), len(truth))]  # each shot's last second
    tail = set(tails[0]) | set(tails[1])
    for i in range(len(truth)):
        luma = rgb_to_luma(to_tensor(grey[i]))
        geometry = metrics.warp_geometry(prev_luma, luma, estimator) if prev_luma is not None and i != cut else None
        for n in names:
            frame = to_tensor(films_frames[n][i])
            cdc[n].update(frame)
            if geometry is not None:
                sse, count = metrics.pair_warp_error(
                    metrics.chroma_component(films_frames[n][i - 1]), metrics.chroma_component(frame), *geometry
                )
                if count:
                    ew[n].append(sse / count)
            per_psnr[n].append(float(metrics.psnr(frame, to_tensor(truth[i]))))
        prev_luma = luma
    return {
        n: {
            "ewarp_chroma": float(np.mean(ew[n])),
            "cdc": cdc[n].value,
            "psnr": float(np.mean(per_psnr[n])),
            "psnr_last_second": float(np.mean([per_psnr[n][i] for i in sorted(tail)])),
            "psnr_last_second_each_shot": [float(np.mean([per_psnr[n][i] for i in shot])) for shot in tails],
        }
        for n in names
    }


def quality(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    variants = {
        "per-frame": TemporalConfig(enabled=False),
        "one-way": TemporalConfig(lookahead=0),
        "two-way": TemporalConfig(),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for a, b in PAIRS[: args.pairs]:
            name = f"{a}|{b}"
            grey_path = tmp / f"{a}-{b}-grey.mkv"
            truth, cut, fps = join([args.clips / f"{a}.mp4", args.clips / f"{b}.mp4"], grey_path)
            refs = {}
            for k in (0, cut):
                ref = tmp / f"{a}-{b}-ref-{k:06d}.png"
                Image.fromarray(truth[k]).save(ref)
                refs[k] = ref
            outs: dict[str, list[np.ndarray]] = {"truth": truth}
            fps_of: dict[str, float] = {}
            runs = [(v, cfg, None) for v, cfg in variants.items()] + [("reference", TemporalConfig(), refs)]
            for variant, cfg, references in runs:
                out = tmp / f"{a}-{b}-{variant}.mkv"
                report = colorize_video(
                    grey_path,
                    out,
                    model,
                    RunSettings(render=RenderConfig(), temporal=cfg, encode=EncodeConfig(codec="ffv1")),
                    anchors=AnchorFiles(references=references or {}),
                    overwrite=True,
                )
                assert report.frames == len(truth), (report.frames, len(truth))
                outs[variant] = rgb_frames(out)
                fps_of[variant] = report.fps
            grey = rgb_frames(grey_path)
            result = scores(outs, grey, truth, cut, fps)
            for variant in outs:
                result[variant]["fps"] = fps_of.get(variant)
            rows.append((name, result))
            r = result
            print(
                f"{name}: chroma E_warp per-frame {r['per-frame']['ewarp_chroma']:.6f} one-way "
                f"{r['one-way']['ewarp_chroma']:.6f} "
                f"two-way {r['two-way']['ewarp_chroma']:.6f} truth {r['truth']['ewarp_chroma']:.6f}; CDC two-way "
                f"{r['two-way']['cdc']:.5f} "
                f"truth {r['truth']['cdc']:.5f}; PSNR per-frame {r['per-frame']['psnr']:.2f} two-way "
                f"{r['two-way']['psnr']:.2f} "
                f"reference {r['reference']['psnr']:.2f}",
                file=sys.stderr,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    variants_all = ["per-frame", "one-way", "two-way", "reference", "truth"]
    print(
        "| film | variant | chroma E_warp | ×truth | ×per-frame | CDC | ×truth | PSNR (dB) | last second of the shots "
        "(dB) | shot 1 / shot 2 (dB) | fps |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        for v in variants_all:
            s = r[v]
            fps_text = f"{s['fps']:.1f}" if s.get("fps") else ""
            print(
                f"| {name} | {v} | {s['ewarp_chroma']:.6f} | {s['ewarp_chroma'] / r['truth']['ewarp_chroma']:.2f} | "
                f"{s['ewarp_chroma'] / r['per-frame']['ewarp_chroma']:.2f} | {s['cdc']:.5f} | "
                f"{s['cdc'] / r['truth']['cdc']:.2f} | "
                f"{s['psnr']:.2f} | {s['psnr_last_second']:.2f} | "
                f"{' / '.join(f'{x:.2f}' for x in s['psnr_last_second_each_shot'])} | {fps_text} |"
            )
    print()
    print("| mean over films | chroma E_warp ×truth | ×per-frame | CDC ×truth | PSNR (dB) | last second (dB) | fps |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for v in variants_all:

        def mean(key: str, over: str | None = None, v: str = v) -> float:
            return float(np.mean([r[v][key] / (r[over][key] if over else 1.0) for _, r in rows]))

        fps_mean = float(np.mean([r[v]["fps"] or 0.0 for _, r in rows]))
        print(
            f"| {v} | {mean('ewarp_chroma', 'truth'):.2f} | {mean('ewarp_chroma', 'per-frame'):.2f} | "
            f"{mean('cdc', 'truth'):.2f} | "
            f"{mean('psnr'):.2f} | {mean('psnr_last_second'):.2f} | {fps_mean:.1f} |"
        )


MEMORY_CHILD = """
import resource, sys, numpy as np, av
from pathlib import Path
from vidcolor.video.run import colorize_video
from vidcolor.settings import EncodeConfig, RenderConfig, TemporalConfig
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
settings = RunSettings(encode=EncodeConfig(preset="ultrafast"))
report = colorize_video(src, dst, "default", settings, overwrite=True)
print(report.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def make_long_film(path: Path, frames: int) -> None:
    """768x576 moving texture (a pan with a drifting bright block), lossless-ish x264."""
    rng = np.random.default_rng(0)
    base = (rng.random((600, 2400)) * 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(base).resize((2400 // 4, 600 // 4)).resize((2400, 600), Image.Resampling.BICUBIC))
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 768, 576, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(frames):
            x = (3 * i) % (2400 - 768)
            y = base[:576, x : x + 768].copy()
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.stack([y, y, y], -1)), "rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def memory() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (250, 1000):
            src = Path(tmp) / f"long-{frames}.mp4"
            make_long_film(src, frames)
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, str(src), str(Path(tmp) / "out.mp4")],
                capture_output=True,
                text=True,
                check=True,
            )
            done, peak = out.stdout.split()
            print(
                f"| {frames} frames 768x576 | peak RSS {float(peak):.0f} MB | {time.perf_counter() - t0:.0f} s wall |"
            )


def tune(args: argparse.Namespace) -> None:
    from vidcolor.color import ycbcr_to_rgb
    from vidcolor.colorizer import Colorizer
    from vidcolor.video.temporal import FlowStage, InlineStage

    variants = {name: TemporalConfig(**fields) for name, fields in json.loads(args.tune).items()}
    colorizer = Colorizer(load_model(args.model), RenderConfig(), video=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    for a, b in PAIRS[: args.pairs]:
        if wanted is not None and not wanted & {a, b}:
            continue
        truth, cut, fps = join([args.clips / f"{a}.mp4", args.clips / f"{b}.mp4"], args.cache / f"{a}-{b}-grey.mkv")
        frames = torch.stack([to_tensor(t)[0] for t in truth])
        luma = rgb_to_luma(frames)
        small = torch.cat([colorizer.prepare(luma[i : i + 8]) for i in range(0, len(luma), 8)])
        cached = args.cache / f"{a}-{b}-{args.model}.pt"
        if cached.exists():
            fresh, geometry = torch.load(cached)
        else:
            fresh = torch.cat([colorizer.predict(small[i : i + 8]) for i in range(0, len(small), 8)])
            estimator = FlowEstimator(metrics.METRIC_FLOW)
            geometry = {
                i: metrics.warp_geometry(luma[i - 1], luma[i], estimator) for i in range(1, len(frames)) if i != cut
            }
            torch.save((fresh, geometry), cached)

        # With --tune-references: the true colour of each shot's first frame, at render size (as
        # vidcolor.references gives the stage), and the frames of each shot's last second.
        anchors = (
            {
                k: torch.nn.functional.interpolate(
                    rgb_to_chroma(frames[k : k + 1]),
                    size=small.shape[-2:],
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
                for k in (0, cut)
            }
            if args.tune_references
            else {}
        )
        second = round(fps)
        tails = [range(max(0, cut - second), cut), range(max(cut, len(frames) - second), len(frames))]

        def score(
            chroma: torch.Tensor,
            frames: torch.Tensor = frames,
            luma: torch.Tensor = luma,
            geometry: dict = geometry,
            tails: list = tails,
        ) -> tuple[float, float, float, str]:
            full = torch.nn.functional.interpolate(chroma, size=frames.shape[-2:], mode="bilinear", align_corners=False)
            rgb = (ycbcr_to_rgb(luma, full) * 255).round() / 255
            cdc, errors, psnrs = metrics.ColourConsistency(), [], []
            for i in range(len(rgb)):
                cdc.update(rgb[i : i + 1])
                psnrs.append(float(metrics.psnr(rgb[i : i + 1], frames[i : i + 1])))
                if i in geometry:
                    sse, n = metrics.pair_warp_error(
                        metrics.chroma_component(rgb[i - 1 : i]), metrics.chroma_component(rgb[i : i + 1]), *geometry[i]
                    )
                    errors.append(sse / max(n, 1))
            return (
                float(np.mean(errors)),
                cdc.value,
                float(np.mean(psnrs)),
                " / ".join(f"{np.mean([psnrs[i] for i in shot]):.2f}" for shot in tails),
            )

        truth_cdc, truth_errors = metrics.ColourConsistency(), []
        for i in range(len(frames)):
            truth_cdc.update(frames[i : i + 1])
            if i in geometry:
                sse, n = metrics.pair_warp_error(
                    metrics.chroma_component(frames[i - 1 : i]),
                    metrics.chroma_component(frames[i : i + 1]),
                    *geometry[i],
                )
                truth_errors.append(sse / max(n, 1))
        t_ew, t_cdc = float(np.mean(truth_errors)), truth_cdc.value
        per_frame = score(fresh)
        grey = score(torch.zeros_like(fresh))
        print(
            f"{a}|{b}: truth E_warp {t_ew:.6f}; per-frame {per_frame[0] / t_ew:.2f}x truth, CDC "
            f"{per_frame[1] / t_cdc:.2f}x, "
            f"PSNR {per_frame[2]:.2f} (last s of each shot {per_frame[3]}); grey CDC {grey[1] / t_cdc:.2f}x, PSNR "
            f"{grey[2]:.2f}"
        )
        for name, config in variants.items():
            stage = InlineStage(FlowStage(config, colorizer.describe if anchors else None), None)
            parts = []
            for i in range(0, len(small), 8):
                # the cached prediction of each frame stands in for the model (found by its luma)
                batch = small[i : i + 8]

                def predict(
                    x: torch.Tensor, i: int = i, batch: torch.Tensor = batch, fresh: torch.Tensor = fresh
                ) -> torch.Tensor:
                    return fresh[[i + int((batch - f).abs().flatten(1).amax(1).argmin()) for f in x]]

                refs = {k - i: c for k, c in anchors.items() if i <= k < i + len(batch)}
                stage.predict = predict
                parts.append(stage.push(batch, references=refs))
            parts.append(stage.flush())
            ew, cdc, p, last = score(torch.cat([q for q in parts if len(q)]))
            print(
                f"  {name}: chroma E_warp {ew / t_ew:.2f}x truth, {ew / per_frame[0]:.2f}x per-frame; CDC "
                f"{cdc / t_cdc:.2f}x truth; PSNR {p:.2f}, last s of each shot {last}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=CLIPS)
    ap.add_argument("--model", default="default")
    ap.add_argument("--pairs", type=int, default=len(PAIRS), help="only the first N films")
    ap.add_argument("--only", help="--tune: only the films with one of these comma-separated clips")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    ap.add_argument("--memory", action="store_true", help="measure peak RSS against film length instead")
    ap.add_argument("--tune", help="JSON {name: TemporalConfig fields}: compare stage settings instead")
    ap.add_argument(
        "--tune-references",
        action="store_true",
        help="--tune with the true colour of each shot's first frame as a reference",
    )
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "vidcolor-bench-shots", help="--tune's cache"
    )
    args = ap.parse_args()
    if args.memory:
        memory()
    elif args.tune:
        tune(args)
    else:
        quality(args)


if __name__ == "__main__":
    main()
