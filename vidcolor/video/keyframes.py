"""``vidcolor keyframes``: one picture per shot, the starting point for colouring a film by hand.

The film is decoded once; the shots are found as the temporal stage finds them (vidcolor.shots,
at the model's render size), and each shot's FIRST frame is written full size as a PNG, coloured
by the model (or grey). The first frame is chosen on purpose: a reference carries forward to the
end of its shot but only a short look-ahead back (vidcolor.temporal), so a reference on the first
frame colours the whole shot. ``keyframes.json`` lists the shots (frames, times, files); ``vidcolor
run --reference DIR`` reads it, so the pictures may be edited in place under their names.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidcolor.colorizer import Colorizer
from vidcolor.compose import compose_image
from vidcolor.errors import InputError, OutputError
from vidcolor.flow import to_uint8
from vidcolor.media.outfile import atomic_write
from vidcolor.media.probe import probe
from vidcolor.media.reader import VideoReader
from vidcolor.models.base import ColorModel
from vidcolor.settings import RenderConfig
from vidcolor.video.anchors import KEYFRAMES_JSON
from vidcolor.video.shots import ShotConfig, ShotDetector

Progress = Callable[[int, "int | None"], None]


@dataclass
class Shot:
    shot: int  # counted from 1
    start: int  # first frame (decoding order, from 0)
    end: int  # last frame, inclusive
    start_time: float  # seconds
    end_time: float  # seconds: the last frame's presentation time
    keyframe: int  # the frame written
    file: str  # its picture, in the output folder


def keyframe_name(shot: int, frame: int, seconds: float) -> str:
    """``shot0003_frame000120_t4.800s.png``: ``vidcolor run --reference`` reads the frame from it."""
    return f"shot{shot:04d}_frame{frame:06d}_t{seconds:.3f}s.png"


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def extract_keyframes(
    src: str | Path,
    out_dir: str | Path,
    model: ColorModel,
    render: RenderConfig = RenderConfig(),
    shots: ShotConfig = ShotConfig(),
    grey: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Shot]:
    """Write one PNG per shot of ``src`` into ``out_dir`` and ``keyframes.json``; returns the shots."""
    src, out_dir = Path(src), Path(out_dir)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file, not a folder")
    index_path = out_dir / KEYFRAMES_JSON
    if index_path.exists() and not overwrite:
        raise OutputError(f"{index_path}: already exists (use --overwrite to replace the key frames)")
    media = probe(src)
    matrix = media.video.matrix
    colorizer = Colorizer(model, render, video=True)
    detector = ShotDetector(shots)
    found: list[Shot] = []
    prev_u8: np.ndarray | None = None
    prev: torch.Tensor | None = None
    frames = 0
    last_time = 0.0
    with VideoReader(src, media.video, batch_size=render.batch_size) as reader:
        for batch in reader:
            small = colorizer.prepare(batch.luma)
            small_u8 = to_uint8(small)
            for i in range(len(batch)):
                index = frames + i
                seconds = float(batch.pts[i] * batch.time_base)
                cur = small[i : i + 1]
                cut = (
                    prev_u8 is None
                    or prev is None
                    or detector.link(prev_u8, small_u8[i], prev, cur, both_ways=False).cut
                )
                if cut:
                    if found:
                        found[-1].end, found[-1].end_time = index - 1, last_time
                    name = keyframe_name(len(found) + 1, index, seconds)
                    _write_keyframe(
                        out_dir / name,
                        batch.luma[i : i + 1],
                        None if grey else colorizer.predict(cur, matrix),
                        matrix,
                        overwrite,
                    )
                    found.append(Shot(len(found) + 1, index, index, seconds, seconds, index, name))
                prev_u8, prev, last_time = small_u8[i], cur, seconds
            frames += len(batch)
            if progress is not None:
                progress(frames, media.video.estimated_frames)
    if not found:
        raise InputError(f"{src}: no video frame could be decoded")
    found[-1].end, found[-1].end_time = frames - 1, last_time
    doc = {
        "input": str(src),
        "frames": frames,
        "size": [media.video.width, media.video.height],
        "keyframe_choice": "the first frame of each shot",
        "coloured_by": None if grey else model.info.name,
        "shots": [asdict(s) for s in found],
    }
    text = (json.dumps(doc, indent=2) + "\n").encode()
    atomic_write(index_path, lambda f: f.write(text), overwrite=True)
    return found


def _write_keyframe(path: Path, luma: torch.Tensor, chroma: torch.Tensor | None, matrix: str, overwrite: bool) -> None:
    """The frame, full size: the model's colour over its own luma, or grey."""
    if chroma is None:
        grey = (luma[0, 0].float().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        rgb = np.repeat(grey[..., None], 3, axis=2)
    else:
        rgb = compose_image(luma.float(), chroma.float().cpu(), 8, matrix)
    data = _png(rgb)
    atomic_write(path, lambda f: f.write(data), overwrite=overwrite)
