"""`vidcolor image`: layout of outputs, exit codes, one-line errors, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vidcolor.cli import app

runner = CliRunner()


def save_grey(path: Path, h: int = 24, w: int = 36, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    Image.fromarray(((xx * 7 + yy * 3) % 256).astype(np.uint8)).save(path, format=fmt)
    return path


def run(*args: str):
    return runner.invoke(app, ["image", *args])


@pytest.fixture()
def model(tiny_model_path: Path) -> list[str]:
    return ["--model", str(tiny_model_path), "--render-factor", "4", "--device", "cpu", "--quiet"]


def test_help_says_colour_input_is_recoloured():
    result = run("--help")
    assert result.exit_code == 0
    assert "recoloured from its luminance" in " ".join(result.output.split())


def test_folder_and_glob_mirror_layout_with_report(tmp_path, model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_grey(tmp_path / "scans" / "a.png")
    save_grey(tmp_path / "scans" / "sub" / "b.jpg")
    save_grey(tmp_path / "scans" / "sub" / "c.png", 30, 20)
    save_grey(tmp_path / "more" / "x.tif")
    save_grey(tmp_path / "more" / "y.png")
    report = tmp_path / "report.json"
    result = run("scans", "more/*.tif", "-o", "out", "--report", str(report), *model)
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.jpg", "sub/c.png", "x.tif"]
    assert Image.open(tmp_path / "out" / "sub" / "b.jpg").format == "JPEG"
    assert Image.open(tmp_path / "out" / "x.tif").format == "TIFF"
    data = json.loads(report.read_text())
    assert data["succeeded"] == 4 and data["failed"] == 0 and data["render_factor"] == 4
    assert {Path(r["output"]).name for r in data["images"]} == {"a.png", "b.jpg", "c.png", "x.tif"}


def test_bad_file_among_many_exits_1_after_the_others(tmp_path, model):
    save_grey(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "b.png").write_text("this is not a picture")
    save_grey(tmp_path / "in" / "c.png")
    result = run(str(tmp_path / "in"), "-o", str(tmp_path / "out"), *model)
    assert result.exit_code == 1
    assert "b.png" in result.output and "Traceback" not in result.output
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "c.png").exists()
    assert not (tmp_path / "out" / "b.png").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]  # no temp files


def test_single_bad_input_is_a_one_line_exit_2(tmp_path, model):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    result = run(str(bad), "-o", str(tmp_path / "out"), *model)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not an image" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_existing_output_refused_unless_overwrite(tmp_path, model):
    src = save_grey(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old")
    result = run(str(src), "-o", str(out), *model)
    assert result.exit_code == 2 and "already exists" in result.output
    assert (out / "a.png").read_bytes() == b"old"
    result = run(str(src), "-o", str(out), "--overwrite", *model)
    assert result.exit_code == 0, result.output
    assert Image.open(out / "a.png").mode == "RGB"


def test_output_folder_equal_to_input_folder_is_refused(tmp_path, model):
    src = save_grey(tmp_path / "a.png")
    before = src.read_bytes()
    result = run(str(src), "-o", str(tmp_path), "--overwrite", *model)
    assert result.exit_code == 2 and "would overwrite an input" in result.output
    assert src.read_bytes() == before


def test_missing_input_is_exit_2(tmp_path, model):
    result = run(str(tmp_path / "nope.png"), "-o", str(tmp_path / "out"), *model)
    assert result.exit_code == 2 and "no such file" in result.output


def test_output_folder_inside_input_folder_is_not_searched(tmp_path, model):
    save_grey(tmp_path / "scans" / "a.png")
    save_grey(tmp_path / "scans" / "b.png")
    out = tmp_path / "scans" / "colour"
    for _ in range(2):  # the second run must not take the first run's outputs as inputs
        result = run(str(tmp_path / "scans"), "-o", str(out), "--overwrite", *model)
        assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.png", "b.png"]


def test_a_film_given_to_image_points_to_run(tmp_path):
    from helpers import make_clip
    from typer.testing import CliRunner

    from vidcolor.cli import app

    clip = make_clip(tmp_path / "film.mp4", frames=2, width=32, height=32, audio=False)
    result = CliRunner().invoke(app, ["image", str(clip), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "vidcolor run" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
