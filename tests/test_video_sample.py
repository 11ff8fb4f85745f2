"""The issue's acceptance on the repository's real clip (samples/clip.mp4: B&W footage, AAC 5.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import decoded, packets, psnr

from vidcolor.settings import (
    RenderConfig,
    RunSettings,  # noqa: I001
    TemporalConfig,
)
from vidcolor.video.run import colorize_video

CLIP = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"


@pytest.mark.slow
def test_real_clip_default_settings(tiny_model, tmp_path):
    out = tmp_path / "clip-colour.mp4"
    report = colorize_video(
        CLIP, out, tiny_model, RunSettings(render=RenderConfig(render_factor=4), temporal=TemporalConfig(enabled=False))
    )
    y_in, t_in, _ = decoded(CLIP)
    y_out, t_out, uv_out = decoded(out)
    assert report.frames == len(y_in) == len(y_out) and t_out == t_in
    assert packets(out, "audio") == packets(CLIP, "audio") != []
    assert np.mean([psnr(a, b) for a, b in zip(y_in, y_out)]) >= 45.0
    assert np.abs(np.stack(uv_out).astype(np.int16) - 128).mean() > 2.0
