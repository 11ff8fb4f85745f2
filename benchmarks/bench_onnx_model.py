"""The model alone under ONNX Runtime: time per frame, where that time goes, and int8's price.

On real luma frames (OpenCV's vtest.avi, benchmarks/footage.py) at the render size of a 768x576
film (224x288), batch 8:
- fp32 ms/frame with 1 and 2 intra-op threads (the graph ``vidcolor run`` builds);
- the share of each operator type (ONNX Runtime's own profiler, 1 thread);
- with ``--startup``: model load and backend set-up with an empty and a filled graph cache;
- with ``--int8``: ONNX Runtime's static QDQ quantisation of the convolutions (per channel, uint8
  activations), calibrated on frames of the video-tune clips (real colour film made grey; tuning
  data, never the held-out set), variants excluding the head or the whole decoder; their speed
  and their ab error against fp32 (mean, 99.9th percentile, max, in CIE ab units).

    python benchmarks/bench_onnx_model.py [--model default] [--int8] [--startup] [--films ../shared/data/video-tune]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.color import luma_to_lightness
from vidcolor.models.base import resize_luma
from vidcolor.models.onnx_graph import onnx_bytes
from vidcolor.models.registry import load_model

SIZE = (224, 288)


def lightness_frames(path: Path, every: int, count: int) -> np.ndarray:
    grey = []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i % every == 0:
                grey.append(frame.to_ndarray(format="gray"))
            if len(grey) >= count:
                break
    luma = torch.from_numpy(np.stack(grey)).float().div(255)[:, None]
    return luma_to_lightness(resize_luma(luma, SIZE)).numpy()


def session(path: str, threads: int, profile: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = profile
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ms_per_frame(sess, frames: np.ndarray, seconds: float = 3.0) -> float:
    batch = {"lightness": frames[:8]}
    sess.run(["ab"], batch)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        sess.run(["ab"], batch)
        n += 8
    return (time.perf_counter() - t0) / n * 1000


def op_shares(path: str, frames: np.ndarray) -> list[tuple[str, float]]:
    sess = session(path, 1, profile=True)
    for _ in range(3):
        sess.run(["ab"], {"lightness": frames[:8]})
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink(missing_ok=True)
    by_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    return [(op, t / total) for op, t in by_op.most_common(6)]


def startup_seconds(spec: str) -> None:
    """Model load and backend set-up (graph + session) with an empty and a filled graph cache."""
    import os

    from vidcolor.colorizer import Colorizer

    with tempfile.TemporaryDirectory() as cache:
        os.environ["VIDCOLOR_CACHE_DIR"] = cache
        for label in ("empty cache (graph built)", "graph read from the cache"):
            t0 = time.perf_counter()
            model = load_model(spec)
            t1 = time.perf_counter()
            Colorizer(model, threads=1)
            print(f"start-up, {label}: load_model {t1 - t0:.2f} s, Colorizer (onnx) {time.perf_counter() - t1:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument(
        "--startup", action="store_true", help="also time model load and backend set-up, cache empty and filled"
    )
    ap.add_argument("--films", type=Path, default=Path("../shared/data/video-tune"))
    args = ap.parse_args()
    import footage

    torch.set_num_threads(1)
    model = load_model(args.model)
    test = lightness_frames(footage.vtest(), 10, 16)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = f"{tmp}/model.onnx"
        Path(fp32).write_bytes(onnx_bytes(model, None))
        print(
            f"model {model.info.name} {model.info.version}; render {SIZE[0]}x{SIZE[1]}, batch 8, real frames of "
            "vtest.avi"
        )
        for threads in (1, 2):
            print(f"fp32, {threads} thread(s): {ms_per_frame(session(fp32, threads), test):.1f} ms/frame")
        print(
            "operator shares (fp32, 1 thread): " + ", ".join(f"{op} {share:.0%}" for op, share in op_shares(fp32, test))
        )
        if args.startup:
            startup_seconds(args.model)
        if not args.int8:
            return
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        films = sorted(p for p in args.films.iterdir() if p.suffix in (".mp4", ".mkv", ".avi", ".mov"))[:8]
        calibration = np.concatenate([lightness_frames(p, 7, 4) for p in films])
        pre = f"{tmp}/pre.onnx"
        quant_pre_process(fp32, pre)
        import onnx

        convs = [n.name for n in onnx.load(pre).graph.node if n.op_type == "Conv"]
        reference = session(fp32, 1).run(["ab"], {"lightness": test})[0]

        class Frames(CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter([{"lightness": calibration[i : i + 1]} for i in range(len(calibration))])

            def get_next(self):
                return next(self.items, None)

        variants = {
            "all convolutions": [],
            "head in fp32": convs[-1:],
            "decoder + head in fp32": [c for c in convs if "encoder" not in c],
        }
        for name, excluded in variants.items():
            out = f"{tmp}/int8.onnx"
            quantize_static(
                pre,
                out,
                Frames(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv"],
                nodes_to_exclude=excluded,
            )
            sess = session(out, 1)
            err = np.abs(sess.run(["ab"], {"lightness": test})[0] - reference)
            print(
                f"int8, {name}: {ms_per_frame(sess, test):.1f} ms/frame (1 thread); ab error mean {err.mean():.2f}, "
                f"p99.9 {np.percentile(err, 99.9):.1f}, max {err.max():.1f} ({len(calibration)} calibration frames "
                f"from {len(films)} clips)"
            )


if __name__ == "__main__":
    main()
