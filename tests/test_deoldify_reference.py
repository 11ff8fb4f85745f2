"""vidcolor's DeOldify support against DeOldify's OWN output (issue 13).

tests/data/deoldify/ holds pictures that DeOldify's own code (its builders, fastai's ``learn.save``
and ``learn.load``, ``ModelImageVisualizer.get_transformed_image`` with post-processing) made from
samples/photos/chelsea.png with seeded generator weights (vidcolor.models.deoldify.seeded); the
recipe is tests/data/deoldify/RECIPE.md. Here the same weights are regenerated bit for bit, saved
in ``learn.save``'s layout (optimiser state with ``slice`` learning rates) and run through
``vidcolor image --model deoldify-KIND:FILE``: the pictures must match DeOldify's within a mean
of 0.5 and a largest difference of 2 code values per channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.models.deoldify.seeded import (
    HEAD_BIAS,
    POWER_ITERATIONS,
    SEED,
    SN_GAIN,
    learn_save_layout,
    seeded_state,
    state_digest,
)
from vidcolor.models.weights import sha256_file

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "data" / "deoldify"
MANIFEST = json.loads((REFERENCE / "manifest.json").read_text())
PHOTO = REPO / MANIFEST["photo"]
runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # The reference was made on one torch thread: multi-threaded convolutions sum in another
    # order, which can move a value across an 8-bit truncation step.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_manifest_matches_this_code() -> None:
    """The reference was made from this photo and these seeding constants."""
    assert sha256_file(PHOTO) == MANIFEST["photo_sha256"]
    assert (MANIFEST["seed"], MANIFEST["power_iterations"], MANIFEST["sn_gain"], tuple(MANIFEST["head_bias"])) == (
        SEED,
        POWER_ITERATIONS,
        SN_GAIN,
        HEAD_BIAS,
    )
    for entry in MANIFEST["kinds"].values():
        for output in entry["outputs"].values():
            assert sha256_file(REFERENCE / output["file"]) == output["sha256"]


@pytest.fixture(scope="module", params=sorted(MANIFEST["kinds"]))
def learn_save_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The seeded weights of one kind, regenerated and checked bit for bit, saved as learn.save does."""
    kind = request.param
    state = seeded_state(kind)
    assert state_digest(state) == MANIFEST["kinds"][kind]["state_digest"], "seeded weights differ from the reference's"
    path = tmp_path_factory.mktemp("deoldify") / f"deoldify-{kind}-seeded.pth"
    torch.save(learn_save_layout(state), path)  # a dict {'model', 'opt'} whose optimiser holds slices
    return kind, path


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.mark.slow
@pytest.mark.parametrize("render_factor", [8, 21])
def test_image_matches_deoldify_own_output(
    learn_save_file: tuple[str, Path], render_factor: int, tmp_path: Path
) -> None:
    kind, weights = learn_save_file
    res = runner.invoke(
        app,
        [
            "image",
            str(PHOTO),
            "-o",
            str(tmp_path),
            "--model",
            f"deoldify-{kind}:{weights}",
            "--render-factor",
            str(render_factor),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    ours = rgb(tmp_path / PHOTO.name)
    theirs = rgb(REFERENCE / MANIFEST["kinds"][kind]["outputs"][str(render_factor)]["file"])
    assert ours.shape == theirs.shape
    diff = np.abs(ours - theirs)
    mean, largest = diff.mean(axis=(0, 1)), diff.max(axis=(0, 1))
    assert (mean <= 0.5).all() and (largest <= 2).all(), f"{kind} rf {render_factor}: mean {mean}, max {largest}"
    # The reference is coloured (not a grey picture that any grey output would match).
    assert (theirs.max(axis=2) - theirs.min(axis=2)).mean() > 20


@pytest.mark.slow
def test_vidcolor_postprocess_keeps_luma_and_follows_colour(learn_save_file: tuple[str, Path], tmp_path: Path) -> None:
    """--postprocess vidcolor: the picture's own luma exactly, DeOldify's colour nearly."""
    kind, weights = learn_save_file
    args = [
        "image",
        str(PHOTO),
        "-o",
        str(tmp_path),
        "--model",
        f"deoldify-{kind}:{weights}",
        "--render-factor",
        "8",
        "-q",
        "--postprocess",
        "vidcolor",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    ours = rgb(tmp_path / PHOTO.name).astype(np.float64)
    luma = ours @ np.array([0.299, 0.587, 0.114])
    grey = np.asarray(Image.open(PHOTO), dtype=np.float64)
    assert np.abs(luma - grey).mean() < 1.0  # the photo's own luma (rounding of R, G, B aside)
    theirs = rgb(REFERENCE / MANIFEST["kinds"][kind]["outputs"]["8"]["file"]).astype(np.float64)
    assert np.abs(ours - theirs).mean() < 6.0  # same colour; finishing differs by design


def test_unknown_postprocess_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["image", str(PHOTO), "-o", str(tmp_path), "--postprocess", "fancy"])
    assert res.exit_code == 2
    assert "--postprocess 'fancy'" in res.output and "Traceback" not in res.output
