"""``vidcolor run --reference``: a person's colour for chosen frames, carried through the film;
wrong or misnamed references are one-line errors. Media: conftest's generated moving pattern."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.errors import InputError
from vidcolor.video.anchors import anchor_pictures, frame_index_from_name

runner = CliRunner()
FAST = ["--render-factor", "4", "--batch-size", "4", "--preset", "ultrafast", "--crf", "0", "--quiet"]


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def y_planes(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="yuv444p")[0] for f in c.decode(video=0)])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def film(tmp_path_factory, make_clip) -> tuple[Path, list[np.ndarray]]:
    """A 40-frame colour clip (the truth) and its decoded frames; the pipeline recolours it from luma."""
    path = make_clip(
        tmp_path_factory.mktemp("refs") / "film.mkv", frames=40, audio=False, codec="ffv1", pix_fmt="yuv444p"
    )
    return path, frames_of(path)


def chroma_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the colour added to the luma (RGB minus its mean), 8-bit codes."""
    ca = a.astype(np.float32) - a.astype(np.float32).mean(2, keepdims=True)
    cb = b.astype(np.float32) - b.astype(np.float32).mean(2, keepdims=True)
    return float(np.abs(ca - cb).mean())


def test_reference_colour_is_carried_through_the_shot(tmp_path, film, tiny_model_path):
    src, truth = film
    refs = tmp_path / "refs"
    refs.mkdir()
    Image.fromarray(truth[0]).save(refs / "000000.png")
    plain, with_ref = tmp_path / "plain.mkv", tmp_path / "ref.mkv"
    base = ["run", str(src), "--model", str(tiny_model_path), *FAST]
    assert runner.invoke(app, [*base[:2], str(plain), *base[2:]]).exit_code == 0
    result = runner.invoke(
        app, [*base[:2], str(with_ref), *base[2:], "--reference", str(refs), "--report", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    a, b = frames_of(plain), frames_of(with_ref)
    assert len(b) == len(truth)
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["reference_frames"] == [0]
    # The random model's colour is far from the truth; from the reference on it is close, and
    # stays closer many frames later (the pattern moves and shifts hue, so it fades).
    assert chroma_error(b[0], truth[0]) < 0.3 * chroma_error(a[0], truth[0])
    assert chroma_error(b[8], truth[8]) < 0.7 * chroma_error(a[8], truth[8])
    # The luma is still the input's (the reference's luma is never used).
    assert np.array_equal(y_planes(plain), y_planes(with_ref))


def test_wrong_frame_reference_is_refused_naming_the_best_match(tmp_path, film, tiny_model_path):
    src, truth = film
    Image.fromarray(truth[25]).save(tmp_path / "frame000003.png")  # frame 25, named as frame 3
    result = runner.invoke(
        app,
        [
            "run",
            str(src),
            str(tmp_path / "o.mkv"),
            "--model",
            str(tiny_model_path),
            *FAST,
            "--reference",
            str(tmp_path / "frame000003.png"),
        ],
    )
    line = one_line_error(result)
    assert "does not match frame 3" in line and "matches best is 25" in line
    assert not (tmp_path / "o.mkv").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, t: Image.fromarray(t[0][:60]).save(d / "000000.png"), "they must match"),
        (lambda d, t: Image.fromarray(t[0]).save(d / "000400.png"), "past the film's end"),
        (lambda d, t: (d / "000000.png").write_bytes(b"not a picture"), "not a readable picture"),
    ],
)
def test_bad_references_are_one_line_errors(tmp_path, film, tiny_model_path, make, message):
    src, truth = film
    refs = tmp_path / "refs"
    refs.mkdir()
    make(refs, truth)
    result = runner.invoke(
        app,
        ["run", str(src), str(tmp_path / "o.mkv"), "--model", str(tiny_model_path), *FAST, "--reference", str(refs)],
    )
    assert message in one_line_error(result)


def test_reference_names_and_keyframes_json(tmp_path):
    assert frame_index_from_name(Path("000120.png")) == 120
    assert frame_index_from_name(Path("shot0002_frame000120_t4.800s.png")) == 120
    with pytest.raises(InputError, match="cannot tell which frame"):
        frame_index_from_name(Path("shot2_take3.png"))
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("edited-by-hand.png", "000007.png"):
        Image.new("RGB", (4, 4)).save(folder / name)
    (folder / "keyframes.json").write_text(json.dumps({"shots": [{"file": "edited-by-hand.png", "keyframe": 42}]}))
    assert anchor_pictures([folder]) == {42: folder / "edited-by-hand.png", 7: folder / "000007.png"}
    with pytest.raises(InputError, match="both reference pictures for frame 7"):
        Image.new("RGB", (4, 4)).save(tmp_path / "frame7.png")
        anchor_pictures([folder, tmp_path / "frame7.png"])
    with pytest.raises(InputError, match="no such reference"):
        anchor_pictures([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no reference picture"):
        anchor_pictures([tmp_path / "empty"])
