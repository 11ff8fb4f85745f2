"""Configuration dataclasses for a run: render (model), temporal (stage) and encode settings.

``RenderConfig`` and ``TemporalConfig`` live beside the code that uses them and are re-exported
here so callers import every setting from one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidcolor.colorizer import RenderConfig
from vidcolor.temporal import TemporalConfig

__all__ = ["EncodeConfig", "RenderConfig", "TemporalConfig"]


@dataclass(frozen=True)
class EncodeConfig:
    """Video encoder settings, named like ffmpeg's options.

    ``codec`` None picks libx264, or the container's own codec where it cannot hold H.264
    (VP9 for .webm). ``pix_fmt`` None keeps the input's chroma subsampling and bit depth where the
    codec can encode them, else yuv420p. ``crf`` 0 is lossless where the codec has a lossless
    mode (x264, x265, VP9); ffv1 is always lossless.
    """

    codec: str | None = None
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None
    threads: int = 0  # 0: the encoder's own choice
    queue_frames: int = 16  # frames waiting for the encoder (bounds memory)
