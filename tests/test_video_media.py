"""Unit tests of the media layer: probe, streaming reader, frame assembly, output planning."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidcolor.errors import InputError, OutputError
from vidcolor.media.frames import fit_luma
from vidcolor.media.plan import container_format, plan_output
from vidcolor.media.probe import probe
from vidcolor.media.reader import VideoReader, normalise_luma
from vidcolor.settings import EncodeConfig
from vidcolor.video.compose import quantise_chroma


def test_probe_reports_streams_rate_colour_and_rotation(make_clip, tmp_path):
    src = make_clip(tmp_path / "r.mp4", frames=10, rotation=90)
    info = probe(src)
    v = info.video
    assert (v.width, v.height, v.codec, v.pix_fmt) == (160, 120, "h264", "yuv420p")
    assert v.frame_rate == 25 and v.frames == 10 and v.rotation == 90 and v.display_matrix is not None
    assert (v.color_primaries, v.colorspace, v.color_range) == (1, 1, 1) and v.matrix == "bt709"
    assert [s.kind for s in info.streams] == ["video", "audio"]
    assert info.metadata["title"] == "vidcolor test clip"
    assert abs(info.duration - 0.4) < 0.05


def test_probe_without_frame_count(make_clip, tmp_path):
    src = make_clip(tmp_path / "n.mkv", frames=20, audio=False, bt709=False)
    v = probe(src).video
    assert v.frames is None  # Matroska states no frame count: never assumed
    assert v.estimated_frames == 20
    assert v.matrix == "bt601"  # untagged SD


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="is a directory"):
        probe(tmp_path)
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="not a readable media file"):
        probe(junk)


def test_reader_batches_luma_and_pts(make_clip, tmp_path):
    src = make_clip(tmp_path / "v.mkv", frames=11, audio=False, vfr=True)
    info = probe(src)
    with VideoReader(src, info.video, batch_size=4) as reader:
        batches = list(reader)
    assert [len(b) for b in batches] == [4, 4, 3]
    assert batches[0].luma.shape == (4, 1, 120, 160) and batches[0].luma.dtype == torch.float32
    assert batches[0].y_planes.shape == (4, 120, 160) and batches[0].y_planes.dtype == np.uint8
    pts = [p for b in batches for p in b.pts]
    times = [Fraction(p) * batches[0].time_base for p in pts]
    with av.open(str(src)) as c:
        expected = [Fraction(f.pts) * c.streams.video[0].time_base for f in c.decode(video=0)]
    assert times == expected
    b = batches[0]
    assert torch.allclose(b.luma[:, 0], normalise_luma(b.y_planes, 8, False)[:, 0])
    assert reader.skipped_packets == 0 and reader.frames == 11


def test_reader_stops_early_without_hanging(make_clip, tmp_path):
    src = make_clip(tmp_path / "s.mp4", frames=40, audio=False)
    reader = VideoReader(src, probe(src).video, batch_size=2, queue_batches=1)
    first = next(iter(reader))
    reader.close()  # producer blocked on a full queue must still exit
    assert len(first) == 2 and not reader._thread.is_alive()


def test_normalise_luma_ranges():
    y8 = np.array([[[16, 235, 0, 255]]], np.uint8)
    assert normalise_luma(y8, 8, False).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert normalise_luma(y8, 8, True).flatten().tolist()[1] == pytest.approx(235 / 255)
    y10 = np.array([[[64, 940]]], np.uint16)
    assert normalise_luma(y10, 10, False).flatten().tolist() == [0.0, 1.0]


def test_quantise_chroma_ranges():
    c = torch.tensor([-0.5, 0.0, 0.5, 0.9]).view(1, 1, 1, 4).repeat(1, 2, 1, 1)
    limited = quantise_chroma(c, 8, False)[0, 0, 0].tolist()
    assert limited == [16, 128, 240, 240]
    full = quantise_chroma(c, 8, True)[0, 0, 0].tolist()
    assert full[1] == 128 and full[0] == 0 and full[3] == 255
    ten = quantise_chroma(c, 10, False)
    assert ten.dtype == np.uint16 and ten[0, 0, 0].tolist() == [64, 512, 960, 960]


def test_fit_luma_keeps_samples():
    y = np.random.default_rng(0).integers(0, 256, (2, 5, 7), dtype=np.uint8)
    same = fit_luma(y, 8, 8, 5, 7)
    assert same.dtype == np.uint8 and np.array_equal(same, y)
    padded = fit_luma(y, 8, 8, 6, 8)
    assert np.array_equal(padded[:, :5, :7], y) and np.array_equal(padded[:, 5, :7], y[:, 4])
    up = fit_luma(y, 8, 10, 5, 7)
    assert up.dtype == np.uint16 and np.array_equal(up >> 2, y)
    assert np.array_equal(fit_luma(up, 10, 8, 5, 7), y)  # 8 -> 10 -> 8 is lossless


def test_output_planning(make_clip, tmp_path):
    media = probe(make_clip(tmp_path / "p.mp4", frames=2, audio=False))
    assert container_format(Path("a.MKV")) == "matroska"
    with pytest.raises(OutputError, match="unsupported output extension"):
        container_format(Path("a.gif"))
    plan = plan_output(tmp_path / "o.mp4", media, EncodeConfig())
    assert (plan.codec, plan.pix_fmt, plan.options["crf"], plan.options["preset"]) == (
        "libx264",
        "yuv420p",
        "18",
        "medium",
    )
    assert plan_output(tmp_path / "o.webm", media, EncodeConfig()).codec == "libvpx-vp9"
    assert plan_output(tmp_path / "o.mov", media, EncodeConfig(codec="prores_ks")).pix_fmt == "yuv422p10le"
    with pytest.raises(OutputError, match="crf"):
        plan_output(tmp_path / "o.mp4", media, EncodeConfig(crf=-1))
