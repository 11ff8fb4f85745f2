"""End-to-end properties of ``colorize_video`` on generated clips (tiny random model, low render factor)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import decoded, packets, psnr

from vidcolor.errors import OutputError
from vidcolor.media.probe import probe
from vidcolor.media.writer import partial_paths
from vidcolor.settings import (
    EncodeConfig,
    RenderConfig,
    RunSettings,  # noqa: I001
    TemporalConfig,
)
from vidcolor.video.run import RunCancelled, colorize_video

FAST = RenderConfig(render_factor=4, batch_size=4)
PER_FRAME = TemporalConfig(enabled=False)


def first_audio_time(path: Path) -> Fraction:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return min(Fraction(p.pts) * s.time_base for p in c.demux(s) if p.size)


@pytest.fixture(scope="module")
def default_run(color_clip: Path, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out.mp4"
    report = colorize_video(color_clip, out, tiny_model, RunSettings(render=FAST))
    return out, report


def test_frames_timestamps_audio_and_metadata_preserved(color_clip, default_run):
    out, report = default_run
    y_in, t_in, _ = decoded(color_clip)
    y_out, t_out, uv_out = decoded(out)
    assert report.frames == len(y_in) == len(y_out) == 30
    assert t_out == t_in
    audio_in, audio_out = packets(color_clip, "audio"), packets(out, "audio")
    assert len(audio_in) > 20 and audio_out == audio_in
    info_in, info_out = probe(color_clip), probe(out)
    assert info_out.metadata.get("title") == "vidcolor test clip"
    assert (info_out.video.width, info_out.video.height) == (160, 120)
    assert info_out.video.frame_rate == info_in.video.frame_rate
    v = info_out.video
    assert (v.color_primaries, v.color_trc, v.colorspace, v.color_range) == (1, 1, 1, 1)
    assert not partial_paths(out)


def test_luma_psnr_at_default_crf(color_clip, default_run):
    out, _ = default_run
    y_in, _, _ = decoded(color_clip)
    y_out, _, _ = decoded(out)
    values = [psnr(a, b) for a, b in zip(y_in, y_out)]
    # the clip's PSNR (mean over frames, the usual figure) meets the 45 dB; no frame collapses
    assert np.mean(values) >= 45.0 and min(values) >= 40.0


def test_output_chroma_is_coloured(default_run):
    out, report = default_run
    _, _, uv = decoded(out)
    deviation = np.abs(np.stack(uv).astype(np.int16) - 128)
    # the random model paints colour: chroma far from neutral grey on a good part of the picture
    assert deviation.mean() > 2.0 and (deviation > 8).mean() > 0.05
    assert report.settings["matrix"] == "bt709"
    assert report.copied_side_packets > 0 and report.fps > 0


@pytest.mark.parametrize("suffix,codec,crf", [(".mkv", "ffv1", 18), (".mp4", "libx264", 0)])
def test_bit_exact_luma(color_clip, tiny_model, tmp_path, suffix, codec, crf):
    out = tmp_path / f"exact{suffix}"
    colorize_video(
        color_clip,
        out,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(codec=codec, crf=crf, preset="ultrafast")),
    )
    y_in, t_in, _ = decoded(color_clip)
    y_out, t_out, _ = decoded(out)
    assert len(y_out) == len(y_in)
    assert all(np.array_equal(a, b) for a, b in zip(y_in, y_out))
    if suffix == ".mp4":
        assert t_out == t_in
    else:
        # Matroska cannot store the negative dts of AAC priming: the muxer shifts every stream by
        # the same amount (as ffmpeg does). Frame timing and A/V offset stay exact.
        assert [t - t_out[0] for t in t_out] == [t - t_in[0] for t in t_in]
        offset_out = first_audio_time(out) - t_out[0]
        offset_in = first_audio_time(color_clip) - t_in[0]
        assert abs(offset_out - offset_in) <= Fraction(1, 1000)  # Matroska's millisecond clock
    assert packets(out, "audio") == packets(color_clip, "audio")


def test_vfr_rotation_subtitles_in_mkv(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "vfr.mkv", frames=18, vfr=True, rotation=90, subtitles=True)
    out = tmp_path / "vfr-out.mkv"
    colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast"))
    )
    _, t_in, _ = decoded(src)
    _, t_out, _ = decoded(out)
    assert t_out == t_in and len(set(np.diff([float(t) for t in t_in]).round(4))) > 1  # really VFR
    assert packets(out, "subtitle") == packets(src, "subtitle") != []
    assert packets(out, "audio") == packets(src, "audio")
    assert probe(out).video.rotation == probe(src).video.rotation == 90


def test_rotation_kept_in_mp4(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "rot.mp4", frames=6, rotation=-90, audio=False)
    out = tmp_path / "rot-out.mp4"
    colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast"))
    )
    assert probe(out).video.rotation == -90


def test_odd_size_padded_for_x264_kept_for_ffv1(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "odd.mkv", frames=5, width=75, height=47, audio=False, codec="ffv1")
    out_x264 = tmp_path / "odd.mp4"
    report = colorize_video(
        src, out_x264, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast"))
    )
    assert (probe(out_x264).video.width, probe(out_x264).video.height) == (76, 48)
    assert any("padded" in w for w in report.warnings)
    out_ffv1 = tmp_path / "odd-ffv1.mkv"
    colorize_video(
        src, out_ffv1, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(codec="ffv1"))
    )
    y_in, _, _ = decoded(src)
    y_out, _, uv = decoded(out_ffv1)
    assert y_out[0].shape == (47, 75) and uv[0].shape == (2, 24, 38)
    assert all(np.array_equal(a, b) for a, b in zip(y_in, y_out))


def test_odd_width_444_not_padded(make_clip, tiny_model, tmp_path):
    # Only subsampled chroma needs an even side: x264 codes 4:4:4 at any size.
    src = make_clip(
        tmp_path / "odd444.mkv", frames=3, width=33, height=47, audio=False, codec="ffv1", pix_fmt="yuv444p"
    )
    out = tmp_path / "odd444.mp4"
    report = colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast"))
    )
    info = probe(out).video
    assert (info.width, info.height, info.pix_fmt) == (33, 47, "yuv444p")
    assert not any("padded" in w for w in report.warnings)


def test_avi_output_frames_in_order(color_clip, tiny_model, tmp_path):
    # AVI keeps no presentation times: reordered B-frames would decode with shuffled timestamps.
    out = tmp_path / "film.avi"
    colorize_video(
        color_clip,
        out,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast")),
    )
    _, times, _ = decoded(out)
    assert len(times) == len(decoded(color_clip)[1])
    assert all(a < b for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("suffix,codec", [(".mp4", "libx264"), (".mkv", "ffv1")])
def test_interlaced_flag_kept_with_warning(make_clip, tiny_model, tmp_path, suffix, codec):
    src = make_clip(tmp_path / "tff.mkv", frames=4, audio=False, codec="ffv1", field_order=2)
    assert probe(src).video.interlaced
    out = tmp_path / f"tff-out{suffix}"
    report = colorize_video(
        src,
        out,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(codec=codec, preset="ultrafast")),
    )
    assert probe(out).video.field_order == 2
    assert any("interlaced (tt)" in w for w in report.warnings)


def test_interlaced_into_progressive_codec_warns(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "tff.mkv", frames=3, audio=False, codec="ffv1", field_order=2)
    report = colorize_video(
        src, tmp_path / "out.webm", tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig())
    )
    assert any("flagged progressive" in w for w in report.warnings)


def test_untagged_sd_full_range_yuvj(make_clip, tiny_model, tmp_path):
    src = make_clip(
        tmp_path / "j.mkv", frames=4, audio=False, bt709=False, codec="mjpeg", pix_fmt="yuvj420p", title=None
    )
    out = tmp_path / "j-out.mkv"
    report = colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(codec="ffv1"))
    )
    assert report.settings["matrix"] == "bt601" and report.settings["pix_fmt"] == "yuv420p"
    assert probe(out).video.full_range
    y_in, _, _ = decoded(src)
    y_out, _, _ = decoded(out)
    assert all(np.array_equal(a, b) for a, b in zip(y_in, y_out))


def test_ten_bit_input_kept_with_ffv1(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "ten.mkv", frames=3, audio=False, codec="ffv1", pix_fmt="yuv422p10le")
    out = tmp_path / "ten-out.mkv"
    report = colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(codec="ffv1"))
    )
    assert report.settings["pix_fmt"] == "yuv422p10le"

    def y10(path):
        with av.open(str(path)) as c:
            return [
                np.frombuffer(f.planes[0], "<u2").reshape(f.height, -1)[:, : f.width].copy() for f in c.decode(video=0)
            ]

    assert all(np.array_equal(a, b) for a, b in zip(y10(src), y10(out)))


def test_stop_midway_leaves_nothing(color_clip, tiny_model, tmp_path):
    out = tmp_path / "stopped.mp4"
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(RunCancelled):
        colorize_video(
            color_clip, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME), should_stop=should_stop
        )
    assert not out.exists() and not partial_paths(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_exception_midway_leaves_nothing(color_clip, tiny_model, tmp_path):
    out = tmp_path / "boom.mp4"

    def progress(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(color_clip, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME), progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_refused_then_overwritten(color_clip, tiny_model, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        colorize_video(color_clip, out, tiny_model, RunSettings(render=FAST))
    assert out.read_bytes() == b"keep me"
    colorize_video(
        color_clip,
        out,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast")),
        overwrite=True,
    )
    assert probe(out).video.frames == 30


def test_input_never_modified(color_clip, default_run):
    import hashlib

    before = hashlib.sha256(color_clip.read_bytes()).hexdigest()
    out, _ = default_run
    assert color_clip.exists() and hashlib.sha256(color_clip.read_bytes()).hexdigest() == before


def test_damaged_middle_and_truncated(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "whole.mp4", frames=30)
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = bytes(3000)  # zeros over the middle of the media data
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "damaged-out.mp4"
    report = colorize_video(
        damaged, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast"))
    )
    assert report.skipped_packets > 0 and any("skipped" in w for w in report.warnings)
    assert 0 < report.frames < 30 and len(decoded(out)[0]) == report.frames
    assert packets(out, "audio")  # the audio still comes along

    whole = make_clip(tmp_path / "whole.mkv", frames=30, audio=False)
    truncated = tmp_path / "truncated.mkv"
    raw = whole.read_bytes()
    truncated.write_bytes(raw[: int(len(raw) * 0.6)])
    out2 = tmp_path / "truncated-out.mkv"
    report2 = colorize_video(
        truncated,
        out2,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(preset="ultrafast")),
    )
    assert 5 < report2.frames < 30 and report2.expected_frames == 30
    assert any("could not be decoded" in w for w in report2.warnings)
    assert len(decoded(out2)[0]) == report2.frames
    assert json.loads(report2.to_json())["frames"] == report2.frames


def test_webm_reencodes_audio_with_warning(make_clip, tiny_model, tmp_path):
    src = make_clip(tmp_path / "w.mp4", frames=8)
    out = tmp_path / "w.webm"
    report = colorize_video(src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME))
    kinds = [(s.kind, s.codec) for s in probe(out).streams]
    assert kinds == [("video", "vp9"), ("audio", "opus")]
    assert any("re-encoded to libopus" in w for w in report.warnings)
    assert len(decoded(out)[0]) == 8


def test_ctrl_c_leaves_nothing(make_clip, tiny_model_path, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    src = make_clip(tmp_path / "long.mp4", frames=300, audio=False)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "o.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidcolor",
            "run",
            str(src),
            str(out),
            "--model",
            str(tiny_model_path),
            "--render-factor",
            "4",
            "--preset",
            "ultrafast",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not partial_paths(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("error:")
    assert list(outdir.iterdir()) == []


def test_deep_grey_master_lossless_with_crf0(make_clip, tiny_model, tmp_path):
    """A 10-bit B&W master: written as 10-bit 4:2:0 and, at crf 0, with its luma bit for bit."""
    src = make_clip(tmp_path / "g.mkv", frames=3, audio=False, codec="ffv1", pix_fmt="gray10le")
    out = tmp_path / "g.mp4"
    report = colorize_video(
        src,
        out,
        tiny_model,
        RunSettings(render=FAST, temporal=PER_FRAME, encode=EncodeConfig(crf=0, preset="ultrafast")),
    )
    assert report.settings["pix_fmt"] == "yuv420p10le"

    def y10(path):
        with av.open(str(path)) as c:
            return [
                np.frombuffer(f.planes[0], "<u2").reshape(f.height, -1)[:, : f.width].copy() for f in c.decode(video=0)
            ]

    a, b = y10(src), y10(out)
    assert len(b) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
