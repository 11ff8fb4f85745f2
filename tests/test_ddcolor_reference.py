"""vidcolor's DDColor support against DDColor's OWN output (issue 37).

tests/data/ddcolor/ holds pictures that DDColor's own code (``build_ddcolor_model`` on a file in
the published ``{'params': state}`` layout, then ``ColorizationPipeline.process``) made from
samples/photos/chelsea.png with seeded weights (vidcolor.models.ddcolor.seeded), for both
encoder sizes at input 512 (DDColor's default) and 256; the recipe is tests/data/ddcolor/RECIPE.md.
Here the same weights are regenerated bit for bit and run through vidcolor: the pictures must
match DDColor's within a mean of 0.5 and a largest difference of 2 code values per channel.

The tiny network goes through ``vidcolor image --model ddcolor:FILE`` at both input sizes; the
large one (900 MB as a file) is checked in memory at 256 through the same ColorModel and stills
path (``pipelines/ddcolor_reference.py compare`` runs the CLI on both sizes at both inputs).
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
from vidcolor.colorizer import Colorizer
from vidcolor.models.ddcolor import network_from_state
from vidcolor.models.ddcolor.model import DDColorModel, model_info
from vidcolor.models.ddcolor.seeded import (
    EMBED_STD,
    HEAD_BIAS,
    HEAD_GAIN,
    LAYER_SCALE,
    SEED,
    SN_GAIN,
    published_layout,
    seeded_state,
)
from vidcolor.models.seeding import state_digest
from vidcolor.models.weights import sha256_file
from vidcolor.settings import RenderConfig
from vidcolor.stills import colorize_image_file

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "data" / "ddcolor"
MANIFEST = json.loads((REFERENCE / "manifest.json").read_text())
PHOTO = REPO / MANIFEST["photo"]
runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # The reference was made on one torch thread (another count sums convolutions in another order).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def difference(ours: np.ndarray, theirs_png: Path) -> tuple[np.ndarray, np.ndarray]:
    theirs = np.asarray(Image.open(theirs_png).convert("RGB"), dtype=np.int16)
    assert ours.shape == theirs.shape
    d = np.abs(ours.astype(np.int16) - theirs)
    return d.mean(axis=(0, 1)), d.max(axis=(0, 1))


def test_manifest_matches_this_code() -> None:
    assert sha256_file(PHOTO) == MANIFEST["photo_sha256"]
    seeding = (SEED, LAYER_SCALE, EMBED_STD, SN_GAIN, HEAD_GAIN, list(HEAD_BIAS))
    recorded = tuple(MANIFEST[k] for k in ("seed", "layer_scale", "embed_std", "sn_gain", "head_gain", "head_bias"))
    assert recorded == seeding
    for name, entry in MANIFEST["sizes"]["tiny"]["outputs"].items():
        assert sha256_file(REFERENCE / name) == entry["sha256"]


@pytest.mark.parametrize("input_size", [512, 256])
def test_tiny_matches_ddcolors_own_output(tmp_path: Path, input_size: int) -> None:
    state = seeded_state("tiny")
    assert state_digest(state) == MANIFEST["sizes"]["tiny"]["state_digest"]
    weights = tmp_path / "ddcolor_paper_tiny.pth"
    torch.save(published_layout(state), weights)
    del state
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["image", str(PHOTO), "-o", str(out), "--model", f"ddcolor:{weights}", "-r", str(input_size // 16), "-q"],
    )
    assert result.exit_code == 0, result.output
    ours = np.asarray(Image.open(out / PHOTO.name).convert("RGB"))
    mean, top = difference(ours, REFERENCE / f"tiny-{input_size}.png")
    assert (mean <= 0.5).all() and (top <= 2).all(), (mean, top)


def test_large_matches_ddcolors_own_output(tmp_path: Path) -> None:
    state = seeded_state("large")
    assert state_digest(state) == MANIFEST["sizes"]["large"]["state_digest"]
    net = network_from_state(state, "seeded large")
    del state
    model = DDColorModel(net, model_info(net, "ddcolor-seeded-large", ""))
    colorizer = Colorizer(model, RenderConfig(render_factor=16, batch_size=1), video=False)
    result = colorize_image_file(PHOTO, tmp_path / "large.png", colorizer)
    assert result.ok and result.render_size == (256, 256)
    mean, top = difference(np.asarray(Image.open(tmp_path / "large.png").convert("RGB")), REFERENCE / "large-256.png")
    assert (mean <= 0.5).all() and (top <= 2).all(), (mean, top)
