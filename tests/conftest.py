"""Shared fixtures: small generated media (PyAV) and a tiny randomly initialised model.

Reusable by every test module:
- ``make_clip(path, **options)``: write a moving coloured pattern (optionally with AAC sine
  audio, an SRT subtitle stream, VFR timestamps, rotation, colour tags) and return the path.
- ``color_clip``: a 30-frame 25 fps 160x120 H.264 mp4 with stereo AAC audio, BT.709 tagged.
- ``tiny_model_path``: a random ``Generator()`` saved as safetensors (``load_model(str(path))``).
- ``tiny_model``: that file loaded as a ColorModel.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

SAMPLE_RATE = 48000


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
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1
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
        frame = av.VideoFrame.from_ndarray(pattern_rgb(i, width, height), "rgb24")
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


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def color_clip(media_dir: Path) -> Path:
    """30 frames, 25 fps, 160x120 H.264 yuv420p BT.709 + stereo AAC sine, title metadata."""
    return make_clip(media_dir / "clip.mp4")


@pytest.fixture(scope="session", name="make_clip")
def make_clip_fixture():
    return make_clip


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from vidcolor.models.generator import Generator
    from vidcolor.models.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(Generator(), path, {"name": "tiny-random", "version": "0"})
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    from vidcolor.models.registry import load_model

    return load_model(str(tiny_model_path))


@pytest.fixture(scope="session")
def tiny_hint_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random generator that takes colour hints. Its hint stem stays zero (as a fresh one starts),
    so a hint acts only through the stride-4 skip: locally, which lets tests check where it lands."""
    import torch

    from vidcolor.models.generator import Generator, GeneratorConfig
    from vidcolor.models.weights import save_generator

    torch.manual_seed(1)
    gen = Generator(GeneratorConfig(hints=True))
    with torch.no_grad():
        gen.up4.fuse[0].weight[:, -3:] *= 40.0  # make the hint input count for a random net
    path = tmp_path_factory.mktemp("model") / "tiny-hints.safetensors"
    save_generator(gen, path, {"name": "tiny-hints", "version": "0"})
    return path
