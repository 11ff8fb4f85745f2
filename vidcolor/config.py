"""Configuration dataclasses for a run: render (model), temporal (stage) and encode settings.

Each lives beside the code that uses it (``RenderConfig`` in colorizer.py, ``TemporalConfig`` in
temporal.py, ``EncodeConfig`` in media/plan.py) and is re-exported here so callers import every
setting from one place.
"""

from __future__ import annotations

from vidcolor.colorizer import RenderConfig
from vidcolor.media.plan import EncodeConfig
from vidcolor.temporal import TemporalConfig

__all__ = ["EncodeConfig", "RenderConfig", "TemporalConfig"]
