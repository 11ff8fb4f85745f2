"""`vidcolor eval` and evaluate_images on generated colour pictures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")


from helpers import make_shapes  # noqa: E402

from vidcolor.cli import app  # noqa: E402
from vidcolor.evaluation.images import evaluate_images, read_picture_rgb  # noqa: E402
from vidcolor.metrics import psnr  # noqa: E402
from vidcolor.models.base import ModelInfo  # noqa: E402
from vidcolor.models.generator import Generator  # noqa: E402
from vidcolor.models.weights import save_generator  # noqa: E402
from vidcolor.settings import RenderConfig  # noqa: E402


class GreyModel:
    """Predicts no colour at all: must score exactly like the grey baseline."""

    info = ModelInfo(name="grey")

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> GreyModel:
        return self

    def predict_chroma(self, luma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
        return luma.new_zeros((luma.shape[0], 2, *luma.shape[-2:]))


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pictures")
    make_shapes(folder, 3, size=72, seed=5)
    return folder


def test_grey_model_scores_as_the_grey_baseline(pictures: Path) -> None:
    report = evaluate_images(sorted(pictures.glob("*.png")), GreyModel(), RenderConfig(render_factor=4, device="cpu"))
    assert len(report.images) == 3 and not report.skipped
    for s in report.images:
        assert s.psnr == pytest.approx(s.psnr_gray, abs=1e-4)
        assert s.ciede2000 == pytest.approx(s.ciede2000_gray, abs=1e-3)
        assert s.colourfulness == pytest.approx(0.0, abs=1e-3) and s.colourfulness_truth > 20
        rgb = torch.from_numpy(read_picture_rgb(Path(s.path))).permute(2, 0, 1)[None].float() / 255
        luma = ((0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]) * 255).round() / 255
        assert s.psnr_gray == pytest.approx(float(psnr(luma.expand(-1, 3, -1, -1), rgb)[0]), abs=1e-3)
    mean = report.mean()
    assert mean["psnr"] == pytest.approx(np.mean([s.psnr for s in report.images]))


def test_eval_cli_table_json_limit_and_skips(pictures: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.safetensors"
    torch.manual_seed(0)
    save_generator(Generator(), model)
    folder = tmp_path / "set"
    folder.mkdir()
    for p in sorted(pictures.glob("*.png")):
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz-broken.png").write_bytes(b"not a picture")
    (folder / "notes.txt").write_text("a file that is no picture: reported, not silently passed over")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(
        app, ["eval", str(folder), "--model", str(model), "--render-factor", "4", "--report", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "mean" in res.output and "PSNR grey" in res.output and "skipped" in res.output
    assert "notes.txt: not a picture" in res.output
    data = json.loads(out.read_text())
    assert data["count"] == 3 and len(data["images"]) == 3 and len(data["skipped"]) == 2
    assert data["render_factor"] == 4 and set(data["mean"]) >= {
        "psnr",
        "psnr_gray",
        "ciede2000",
        "ciede2000_gray",
        "colourfulness",
    }
    assert all(np.isfinite(v) for v in data["mean"].values())
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # inputs untouched

    res = CliRunner().invoke(
        app, ["eval", str(folder), "--model", str(model), "-r", "4", "--limit", "1", "--report", str(out), "-q"]
    )
    assert res.exit_code == 0 and json.loads(out.read_text())["count"] == 1


def test_eval_cli_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(app, ["eval", str(tmp_path)])
    assert res.exit_code == 2 and "no pictures" in res.output
