"""Helpers shared by the test modules (imported as ``helpers``: pytest puts tests/ on the path).

Media are generated here, never downloaded: ``make_clip`` writes a moving colour pattern with
PyAV (optionally with AAC sine audio, SRT subtitles, VFR timestamps, rotation, colour tags);
``make_archive`` a small mixed archive for the batch engine; ``make_shapes`` coloured shapes for
the trainers. conftest.py wraps some of them as fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image

from vidcolor import metrics
from vidcolor.media.probe import tag_bt709_limited
from vidcolor.train.recipe import recipe_from_dict
from vidcolor.train.trainer import Trainer

SAMPLE_RATE = 48000


def shapes_rgb(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of separate grey shapes drifting right a pixel a frame on a mid-grey ground: a
    dark disc on the left, a bright square on the right (edges a hint must stop at)."""
    yy, xx = np.mgrid[0:height, 0:width]
    grey = np.full((height, width), 128, np.uint8)
    r = min(width, height) // 4
    grey[(yy - height // 2) ** 2 + (xx - width // 4 - i) ** 2 < r**2] = 60
    grey[(abs(yy - height // 2) < r) & (abs(xx - 3 * width // 4 - i) < r)] = 205
    return np.repeat(grey[..., None], 3, axis=2)


def pattern_rgb(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of a moving colour pattern: gradients plus a drifting bright square."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = (xx * 255 // max(1, width - 1) + 3 * i) % 256
    g = (yy * 255 // max(1, height - 1) + 2 * i) % 256
    b = ((xx + yy) * 2 + 5 * i) % 256
    rgb = np.stack([r, g, b], -1).astype(np.uint8)
    s = max(4, min(width, height) // 4)
    x0 = (4 * i) % max(1, width - s)
    rgb[height // 3 : height // 3 + s, x0 : x0 + s] = (250, 240, 40)
    return rgb


def make_clip(
    path: str | Path,
    frames: int = 30,
    width: int = 160,
    height: int = 120,
    fps: int = 25,
    audio: bool = True,
    subtitles: bool = False,
    vfr: bool = False,
    rotation: int = 0,
    bt709: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    title: str | None = "vidcolor test clip",
    field_order: int = 0,  # AVFieldOrder: 2 = interlaced, top field first
    picture: Callable[[int, int, int], np.ndarray] | None = None,  # (frame, width, height) -> RGB; pattern_rgb
) -> Path:
    """Write a test clip. VFR: frame durations cycle 1, 2, 3 ticks of 1/(4·fps)."""
    path = Path(path)
    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.codec_context.time_base = Fraction(1, fps * 4) if vfr else Fraction(1, fps)
    if codec == "libx264":
        video.options = {"preset": "ultrafast", "crf": "12"}
    ctx = video.codec_context
    if field_order:
        ctx.field_order = field_order
    if bt709:
        tag_bt709_limited(ctx)
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo") if audio else None
    subs = None
    if subtitles:
        subs = out.add_mux_stream("subrip")
        subs.time_base = Fraction(1, 1000)
    if title:
        out.metadata["title"] = title
    pts = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray((picture or pattern_rgb)(i, width, height), "rgb24")
        frame = frame.reformat(format=pix_fmt, dst_colorspace=1 if bt709 else 6)
        frame.pts = pts
        pts += (1 + i % 3) if vfr else 1
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    if sound is not None:
        total = int(frames / fps * SAMPLE_RATE)
        for start in range(0, total, 1024):
            t = np.arange(start, start + 1024) / SAMPLE_RATE
            tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = SAMPLE_RATE, start
            for packet in sound.encode(af):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    if subs is not None:
        for k, start in enumerate(range(0, int(frames / fps * 1000), 400)):
            packet = av.Packet(f"subtitle line {k}".encode())
            packet.stream = subs
            packet.pts = packet.dts = start
            packet.duration = 300
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)
    out.close()
    return path


SMALL = {"decoder_channels": [16, 16, 16]}


def make_shapes(folder: Path, n: int, size: int = 48, seed: int = 0) -> list[Path]:
    """Coloured discs and squares on a horizontal colour gradient, as PNG files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0.0, 1.0, size)[None, :, None]
        img = np.ascontiguousarray(((c0 * (1 - t) + c1 * t) * np.ones((size, 1, 1))).astype(np.uint8))
        for _ in range(3):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            x, y = (int(v) for v in rng.integers(6, size - 6, 2))
            r = int(rng.integers(4, size // 4))
            if rng.random() < 0.5:
                cv2.circle(img, (x, y), r, colour, -1)
            else:
                cv2.rectangle(img, (x - r, y - r), (x + r, y + r), colour, -1)
        path = folder / f"shape{i:03d}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def recipe(shapes: Path, out: Path, **train: object) -> object:
    t = {
        "mode": "classification",
        "steps": 12,
        "batch_size": 6,
        "lr": 3e-3,
        "warmup_steps": 1,
        "pretrained_encoder": False,
        "checkpoint_every": 4,
        "sample_every": 6,
        "log_every": 1,
        "out_dir": str(out),
    }
    t.update(train)
    return recipe_from_dict(
        {
            "name": "tiny",
            "model": SMALL,
            "data": {
                "roots": [str(shapes)],
                "cache_size": 48,
                "holdout": 2,
                "cache_dir": str(out.parent / "cache"),
                "min_side": 32,
                "workers": 1,
            },
            "augment": {
                "size": 32,
                "crop_min": 1.0,
                "flip": False,
                "p_grain": 0.0,
                "p_blur": 0.0,
                "p_fade": 0.0,
                "p_scratches": 0.0,
            },
            "train": t,
        }
    )


def run_logged(trainer: Trainer, **kw: object) -> list[dict]:
    rows: list[dict] = []
    trainer.on_step = rows.append
    trainer.run(**kw)
    return rows


def decoded(path: Path) -> tuple[list[np.ndarray], list[Fraction], list[np.ndarray]]:
    """Y planes, presentation times (exact fractions of a second) and (U, V) planes per frame."""
    ys, times, uvs = [], [], []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            planes = [
                np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width].copy() for p in f.planes
            ]
            ys.append(planes[0])
            uvs.append(np.stack(planes[1:3]))
            times.append(Fraction(f.pts) * s.time_base)
    return ys, times, uvs


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(streams) if p.size]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two 8-bit pictures of one shape (vidcolor.metrics.psnr; 100 dB when equal)."""
    return float(metrics.psnr(torch.from_numpy(a)[None], torch.from_numpy(b)[None], peak=255.0)[0])


CLIP = dict(frames=6, width=64, height=48)


# The archive every batch test converts: key in DST -> kind.
EXPECTED_ITEMS = {
    "broken.mp4": "video",  # a truncated copy of a clip: fails, is reported, the job goes on
    "mystery.mp4": "video",  # a clip named mystery.bin: found by content
    "photos/grey.png": "image",
    "photos/scan.jpg": "image",  # a JPEG without an extension gets one
    "reel.mp4": "video",
    "sub/deep/reel2.mp4": "video",  # a .mov comes out as .mp4
}


def make_archive(root: Path) -> Path:
    """A small archive: clips (one with sound), photos, a non-media file, a truncated video."""
    src = root / "archive"
    (src / "photos").mkdir(parents=True)
    (src / "sub" / "deep").mkdir(parents=True)
    make_clip(src / "reel.mp4", audio=True, **CLIP)
    make_clip(src / "sub" / "deep" / "reel2.mov", audio=False, **CLIP)
    shutil.copyfile(src / "reel.mp4", src / "mystery.bin")
    data = (src / "reel.mp4").read_bytes()
    (src / "broken.mp4").write_bytes(data[: len(data) // 3])
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56), dtype=np.uint8)).save(src / "photos" / "grey.png")
    Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)).save(src / "photos" / "scan", format="JPEG")
    (src / "notes.txt").write_text("shot list, reel 1\n")
    return src


def leftovers(dst: Path) -> list[Path]:
    """Temp files anywhere in DST, and anything in the staging folder."""
    found = [p for p in dst.rglob("*") if ".partial" in p.name]
    staging = dst / ".vidcolor" / "staging"
    if staging.exists():
        found += list(staging.rglob("*"))
    return found
