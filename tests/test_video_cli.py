"""``vidcolor run``: a working run end to end, and every bad input as exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from helpers import decoded
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.media.writer import partial_paths

runner = CliRunner()
FAST = ["--render-factor", "4", "--batch-size", "4", "--preset", "ultrafast", "--no-temporal"]


def run(*args: str):
    return runner.invoke(app, ["run", *map(str, args)])


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_help_is_complete():
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--model",
        "--render-factor",
        "--batch-size",
        "--device",
        "--codec",
        "--crf",
        "--preset",
        "--no-temporal",
        "--temporal-strength",
        "--keyframe-interval",
        "--overwrite",
        "--quiet",
        "--report",
    ):
        assert option in result.output
    assert "recoloured from its luminance" in " ".join(result.output.split())


def test_run_writes_output_and_report(color_clip, tiny_model_path, tmp_path):
    out, report = tmp_path / "out.mkv", tmp_path / "run.json"
    result = run(color_clip, out, "--model", tiny_model_path, *FAST, "--report", report, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""  # --quiet: nothing on the terminal
    data = json.loads(report.read_text())
    assert data["frames"] == 30 and data["output"]["video"]["codec"] == "h264"
    assert set(data["seconds"]) >= {"decode", "model", "compose", "encode", "wall"}
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames in (0, 30) and len(c.streams.audio) == 1


def test_keyframe_mode_runs(color_clip, tiny_model_path, tmp_path):
    out = tmp_path / "kf.mp4"
    result = run(
        color_clip,
        out,
        "--model",
        tiny_model_path,
        "--render-factor",
        "4",
        "--preset",
        "ultrafast",
        "--keyframe-interval",
        "4",
        "--temporal-strength",
        "0.5",
    )
    assert result.exit_code == 0, result.output
    assert "30 frames" in result.stderr


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, make_clip) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("this is not a video\n" * 50)
    (d / "folder.mp4").mkdir()
    audio_only = d / "audio.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        import numpy as np

        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return {
        "empty": d / "empty.mp4",
        "text": d / "notes.mp4",
        "dir": d / "folder.mp4",
        "audio": audio_only,
        "missing": d / "missing.mp4",
    }


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("text", "not a readable media file"),
        ("dir", "is a directory"),
        ("audio", "no video stream"),
    ],
)
def test_bad_input_files(bad_inputs, tiny_model_path, tmp_path, case, needle):
    out = tmp_path / "out.mp4"
    line = one_line_error(run(bad_inputs[case], out, "--model", tiny_model_path, *FAST))
    assert needle in line
    assert list(tmp_path.iterdir()) == []


def test_output_errors(color_clip, tiny_model_path, tmp_path):
    exists = tmp_path / "exists.mp4"
    exists.write_bytes(b"x")
    assert "already exists" in one_line_error(run(color_clip, exists, "--model", tiny_model_path))
    assert exists.read_bytes() == b"x"
    assert "is the input" in one_line_error(run(color_clip, color_clip, "--model", tiny_model_path, "--overwrite"))
    spelled = color_clip.parent / "." / color_clip.name
    assert "is the input" in one_line_error(run(color_clip, spelled, "--model", tiny_model_path, "--overwrite"))
    assert "unsupported output extension" in one_line_error(
        run(color_clip, tmp_path / "out.xyz", "--model", tiny_model_path)
    )
    assert "does not exist" in one_line_error(run(color_clip, tmp_path / "nope" / "o.mp4", "--model", tiny_model_path))
    assert "cannot hold" in one_line_error(
        run(color_clip, tmp_path / "o.webm", "--model", tiny_model_path, "--codec", "libx264")
    )
    assert list(p.name for p in tmp_path.iterdir()) == ["exists.mp4"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--render-factor", "2"], "out of range"),
        (["--keyframe-interval", "zero"], "--keyframe-interval"),
        (["--crf", "99"], "--crf"),
        (["--codec", "nosuchcodec"], "nosuchcodec"),
        (["--pix-fmt", "rgb24", "--codec", "libx264"], "rgb24"),
        (["--temporal-strength", "3"], "--temporal-strength"),
        (["--device", "cuda:0"], "cuda"),
    ],
)
def test_bad_options(color_clip, tiny_model_path, tmp_path, args, needle):
    if args[:2] == ["--device", "cuda:0"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device exists here")
    out = tmp_path / "out.mp4"
    assert needle in one_line_error(run(color_clip, out, "--model", tiny_model_path, *args))
    assert list(tmp_path.iterdir()) == []


def test_model_errors(color_clip, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    assert "unknown model" in one_line_error(run(color_clip, out, "--model", "no-such-model"))
    assert "not found" in one_line_error(run(color_clip, out, "--model", tmp_path / "gone.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    assert "junk.safetensors" in one_line_error(run(color_clip, out, "--model", junk))
    # the shipped default model may not be installed: a clean error, not a traceback
    import vidcolor.models.registry as registry

    monkeypatch.setattr(registry, "read_registry", lambda *a, **k: [])
    assert "no default model" in one_line_error(run(color_clip, out))
    assert not out.exists() and not partial_paths(out)


def _audio(path: Path) -> list[tuple[float, bytes]]:
    """Every audio packet of a file: (start in seconds, bytes)."""
    with av.open(str(path)) as c:
        return [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(audio=0) if p.size]


def test_frames_renders_an_excerpt_with_its_audio(make_clip, tiny_model_path, tmp_path):
    """--frames 10:22: twelve frames, the source's frames 10-21 (luma kept), starting at time 0, with
    the audio packets of that stretch byte for byte; bad ranges are one-line errors, nothing written."""
    src = make_clip(tmp_path / "in.mp4", frames=30)
    out = tmp_path / "x.mkv"
    result = run(src, out, "--model", tiny_model_path, *FAST, "--codec", "ffv1", "--frames", "10:22", "-q")
    assert result.exit_code == 0, result.output
    (src_y, _, _), (out_y, out_times, _) = decoded(src), decoded(out)
    assert len(out_y) == 12 and all((a == b).all() for a, b in zip(out_y, src_y[10:22])) and out_times[0] == 0
    src_audio, out_audio = _audio(src), _audio(out)
    start, end = 10 / 25, 22 / 25
    wanted = [data for t, data in src_audio if start <= t < end]
    assert [data for _, data in out_audio] == wanted and out_audio[0][0] < 0.05
    for bad, message in (("5", "A:B"), ("9:3", "greater than A"), ("40:", "starts past the end")):
        result = run(src, tmp_path / "bad.mkv", "--model", tiny_model_path, *FAST, "--frames", bad, "-y")
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
        assert not (tmp_path / "bad.mkv").exists() and not partial_paths(tmp_path / "bad.mkv")
