"""How fast the studio answers a hint: PUT a frame's hints, GET the frame coloured with them.

The film: samples/clip.mp4 (Big Buck Bunny, desaturated; samples/README.md) scaled to 854x480 with
PyAV into a temporary folder. The studio is served in-process (Starlette's test client: the same
routes, guard and JSON as the browser's requests, without the network). For ten frames across the
film, three hint points are set, then the frame is fetched with them (JPEG); the time from the PUT
to the last byte of the picture is what a person waits for after clicking.

    python benchmarks/bench_studio.py [--model default] [--size 854x480]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import torch

from vidcolor.models.registry import load_model
from vidcolor.studio.project import Studio
from vidcolor.studio.server import create_app

CLIP = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"
TOKEN = "bench"


def scaled_clip(dst: Path, width: int, height: int) -> Path:
    with av.open(str(CLIP)) as src, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 25)
        for i, frame in enumerate(src.decode(video=0)):
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts = i
            for packet in stream.encode(scaled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def main() -> None:
    from starlette.testclient import TestClient

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--size", default="854x480")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        film = scaled_clip(Path(tmp) / "film.mp4", width, height)
        studio = Studio([film], load_model(args.model))
        while not studio.source.snapshot()["done"]:
            time.sleep(0.1)
        client = TestClient(create_app(studio, TOKEN, {"testserver"}))
        headers = {"X-Vidcolor-Token": TOKEN}
        frames = studio.source.count()
        client.get("/api/frame/0?view=choices", headers=headers)  # the first call builds the model's buffers
        waits, autos = [], []
        for k in range(10):
            index = (k * frames) // 10 + 3
            t0 = time.perf_counter()
            assert client.get(f"/api/frame/{index}?view=auto", headers=headers).status_code == 200
            autos.append(time.perf_counter() - t0)
            points = [[width // 4 + 40 * j, height // 2 + 20 * j] for j in range(3)]
            strokes = [{"colour": "#d04030", "radius": 4, "points": [p]} for p in points]
            t0 = time.perf_counter()
            assert client.put(f"/api/hints/{index}", headers=headers, json=strokes).status_code == 200
            assert client.get(f"/api/frame/{index}?view=choices", headers=headers).status_code == 200
            waits.append(time.perf_counter() - t0)
        studio.close()
    size = studio.views.colorizer.render_size(height, width)
    print(f"{width}x{height}, render size {size[1]}x{size[0]}, torch threads {torch.get_num_threads()}")
    print(f"automatic frame: median {statistics.median(autos) * 1000:.0f} ms, max {max(autos) * 1000:.0f} ms")
    print(f"hint -> coloured frame: median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
