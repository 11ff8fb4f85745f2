"""`vidcolor train` end to end: a recipe file, overrides, resume, backbone export/import, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")


from helpers import make_shapes

from vidcolor.cli import app  # noqa: E402
from vidcolor.models.weights import load_generator  # noqa: E402
from vidcolor.train.backbone import load_backbone  # noqa: E402

RECIPE = """
name = "tiny-cli"
[model]
decoder_channels = [16, 16, 16]
[data]
roots = ["{data}"]
cache_size = 48
holdout = 2
cache_dir = "{cache}"
min_side = 32
workers = 1
[augment]
size = 32
[train]
mode = "classification"
steps = 3
batch_size = 4
pretrained_encoder = false
checkpoint_every = 2
sample_every = 2
log_every = 1
out_dir = "{out}"
"""


@pytest.fixture()
def recipe_file(tmp_path: Path) -> Path:
    make_shapes(tmp_path / "data", 8)
    path = tmp_path / "tiny.toml"
    path.write_text(RECIPE.format(data=tmp_path / "data", cache=tmp_path / "cache", out=tmp_path / "run"))
    return path


def test_train_cli_runs_resumes_and_moves_the_backbone(recipe_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    backbone = tmp_path / "enc.safetensors"
    res = runner.invoke(
        app, ["train", str(recipe_file), "--steps", "2", "--device", "cpu", "--export-backbone", str(backbone)]
    )
    assert res.exit_code == 0, res.output
    assert "step 2" in res.output and "holdout PSNR" in res.output  # console lines when not a terminal
    run = tmp_path / "run"
    assert {"checkpoint.pt", "metrics.csv", "model.safetensors"} <= {p.name for p in run.iterdir()}
    model, _ = load_generator(run / "model.safetensors")
    enc = load_backbone(backbone)
    assert all(torch.equal(enc[k], v) for k, v in model.encoder.state_dict().items())

    res = runner.invoke(app, ["train", str(recipe_file), "--quiet"])  # recipe says 3 steps: one more
    assert res.exit_code == 0 and res.output == "", res.output
    assert load_generator(run / "model.safetensors")[1]["steps"] == "3"

    # Export straight from a checkpoint, then start a regression run from that encoder.
    exported = tmp_path / "from-ckpt.safetensors"
    res = runner.invoke(app, ["train", str(run / "checkpoint.pt"), "--export-backbone", str(exported)])
    assert res.exit_code == 0, res.output
    reg = recipe_file.read_text().replace('mode = "classification"', 'mode = "regression"')
    (tmp_path / "reg.toml").write_text(reg)
    res = runner.invoke(
        app,
        [
            "train",
            str(tmp_path / "reg.toml"),
            "--steps",
            "0",
            "--out",
            str(tmp_path / "reg"),
            "--import-backbone",
            str(exported),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    reg_model, _ = load_generator(tmp_path / "reg" / "model.safetensors")
    assert reg_model.config.head == "regression"
    imported = load_backbone(exported)
    assert all(torch.equal(v, imported[k]) for k, v in reg_model.encoder.state_dict().items())


@pytest.mark.parametrize(
    "edit, args, message",
    [
        (("steps = 3", 'steps = "3"'), [], "train.steps"),
        (("[augment]", "[augmentation]"), [], "unknown sections"),
        (("size = 32", "size = 40"), [], "multiple of 32"),
        (None, ["--amp", "fp16", "--device", "cpu"], "fp16"),
        (None, ["--import-backbone", "missing.safetensors"], "backbone file not found"),
        (("[model]", "[model\n"), [], "not valid TOML"),
    ],
)
def test_train_cli_bad_input_is_one_line_exit_2(
    recipe_file: Path, edit: tuple[str, str] | None, args: list[str], message: str
) -> None:
    if edit:
        recipe_file.write_text(recipe_file.read_text().replace(*edit, 1))
    res = CliRunner().invoke(app, ["train", str(recipe_file), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_train_cli_missing_recipe_and_model_without_export(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", str(tmp_path / "none.toml")])
    assert res.exit_code == 2 and "recipe not found" in res.output
    res = CliRunner().invoke(app, ["train", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2 and "--export-backbone" in res.output


def test_a_second_run_into_a_folder_being_trained_is_refused(recipe_file: Path, tmp_path: Path) -> None:
    from vidcolor.media.outfile import OutputLock

    run = tmp_path / "run"
    run.mkdir()
    with OutputLock(run):  # another `vidcolor train` holding the folder
        res = CliRunner().invoke(app, ["train", str(recipe_file), "--steps", "1", "--device", "cpu"])
    assert res.exit_code == 2 and "being written by another vidcolor run" in res.output, res.output
    assert list(run.iterdir()) == []  # nothing written into the other run's folder
