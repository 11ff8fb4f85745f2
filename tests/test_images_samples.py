"""samples/ holds what its README promises: small B&W media, a clip with exactly one AAC track."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_photos_are_black_and_white_and_small():
    photos = sorted((SAMPLES / "photos").iterdir())
    assert [p.name for p in photos] == ["chelsea.png", "coffee.jpg", "rocket.jpg"]
    for path in photos:
        img = Image.open(path)
        assert img.mode == "L" and min(img.size) >= 300
        assert path.stat().st_size < 200_000


def test_clip_is_short_black_and_white_with_one_aac_track():
    clip = SAMPLES / "clip.mp4"
    assert clip.stat().st_size < 3_000_000
    with av.open(str(clip)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.duration / av.time_base <= 10.0
        video = c.streams.video[0]
        assert "CC BY 3.0" in c.metadata.get("comment", "")
        frames = 0
        for frame in c.decode(video):
            if frames % 40 == 0:
                planes = frame.to_ndarray(format="yuv420p")
                chroma = planes[frame.height :].astype(int)
                assert np.abs(chroma - 128).max() <= 1  # neutral chroma: black and white
                assert planes[: frame.height].std() > 10  # real picture content
            frames += 1
        assert frames == 132
