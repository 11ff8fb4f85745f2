"""``vidcolor keyframes``: one picture per shot of a generated film with a cut, and those pictures
given back to ``vidcolor run --reference`` (the "colour a film your way" round trip)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vidcolor.cli import app

runner = CliRunner()
CUT = 12
FRAMES = 24


def scene_a(i: int, width: int, height: int) -> np.ndarray:
    """Colour gradients with a yellow square moving right."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([(xx * 255 // (width - 1) + 3 * i) % 256, yy * 255 // (height - 1), (xx + yy) % 256], -1).astype(
        np.uint8
    )
    rgb[40:70, 10 + 4 * i : 40 + 4 * i] = (250, 240, 40)
    return rgb


def scene_b(i: int, width: int, height: int) -> np.ndarray:
    """A different scene: dark stripes panning right, no gradient."""
    xx = np.arange(width)[None, :].repeat(height, 0)
    stripes = (40 + 30 * np.sin((xx - 2 * i) / 5.0)).astype(np.uint8)
    return np.stack([stripes, stripes // 2, stripes], -1)


@pytest.fixture(scope="module")
def film_with_cut(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "cut.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv444p"
        for i in range(FRAMES):
            rgb = scene_a(i, 160, 120) if i < CUT else scene_b(i, 160, 120)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24").reformat(format="yuv444p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_one_picture_per_shot_and_an_index(tmp_path, film_with_cut, tiny_model_path):
    out = tmp_path / "keys"
    result = runner.invoke(
        app, ["keyframes", str(film_with_cut), "-o", str(out), "--model", str(tiny_model_path), "-r", "4"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "keyframes.json").read_text())
    assert [(s["start"], s["end"]) for s in doc["shots"]] == [(0, CUT - 1), (CUT, FRAMES - 1)]
    assert doc["frames"] == FRAMES and doc["keyframe_choice"] == "the first frame of each shot"
    assert doc["shots"][1]["start_time"] == pytest.approx(CUT / 25)
    for shot in doc["shots"]:
        with Image.open(out / shot["file"]) as img:
            assert img.size == (160, 120) and img.mode == "RGB"
    assert doc["shots"][1]["file"] == "shot0002_frame000012_t0.480s.png"
    again = runner.invoke(
        app, ["keyframes", str(film_with_cut), "-o", str(out), "--model", str(tiny_model_path), "-r", "4"]
    )
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_grey_keyframes_and_the_round_trip_through_run(tmp_path, film_with_cut, tiny_model_path):
    keys = tmp_path / "keys"
    assert (
        runner.invoke(
            app,
            [
                "keyframes",
                str(film_with_cut),
                "-o",
                str(keys),
                "--model",
                str(tiny_model_path),
                "-r",
                "4",
                "--grey",
                "-q",
            ],
        ).exit_code
        == 0
    )
    doc = json.loads((keys / "keyframes.json").read_text())
    first = keys / doc["shots"][0]["file"]
    rgb = np.asarray(Image.open(first))
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() == 0  # grey
    # "Edit" the first shot's picture: its true colour (luma kept); drop the second shot's.
    with av.open(str(film_with_cut)) as c:
        truth0 = next(c.decode(video=0)).to_ndarray(format="rgb24")
    Image.fromarray(truth0).save(first)
    (keys / doc["shots"][1]["file"]).unlink()
    out = tmp_path / "out.mkv"
    result = runner.invoke(
        app,
        [
            "run",
            str(film_with_cut),
            str(out),
            "--model",
            str(tiny_model_path),
            "-r",
            "4",
            "--codec",
            "ffv1",
            "-q",
            "--reference",
            str(keys),
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["reference_frames"] == [0]
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    colour = lambda x: x - x.mean(2, keepdims=True)  # noqa: E731
    assert np.abs(colour(frames[0]) - colour(truth0.astype(np.float32))).mean() < 6.0
    # Nothing of the first shot's colour after the cut: the model's own colour there.
    plain = tmp_path / "plain.mkv"
    assert (
        runner.invoke(
            app,
            [
                "run",
                str(film_with_cut),
                str(plain),
                "--model",
                str(tiny_model_path),
                "-r",
                "4",
                "--codec",
                "ffv1",
                "-q",
            ],
        ).exit_code
        == 0
    )
    with av.open(str(plain)) as c:
        model_only = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    assert np.abs(frames[CUT + 2] - model_only[CUT + 2]).mean() < 1.0
