"""What the v2 training run relies on: hint inputs, simulated hints, the WSD schedule, the sparse
classification loss, a capped index, weights-only resume and data-parallel processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import SMALL, make_shapes, recipe, run_logged

from vidcolor.models.ab_bins import in_gamut_bin_centers, soft_encode
from vidcolor.models.generator import HINT_CHANNELS, Generator, GeneratorConfig
from vidcolor.models.weights import load_generator, read_metadata
from vidcolor.train.hints import HintSimulation, fixed_point_hints, simulate_hints
from vidcolor.train.index import IndexEntry, TrainIndex, cap_per_class, class_key
from vidcolor.train.losses import classification_loss
from vidcolor.train.modes import build_trainer
from vidcolor.train.recipe import recipe_from_dict
from vidcolor.train.trainer import lr_factor


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shapes")
    make_shapes(folder, 8)
    return folder


def hint_recipe(shapes: Path, out: Path, **train: object):
    base = recipe(shapes, out, **train)
    raw = {
        "name": "tiny-hints",
        "model": {**SMALL, "hints": True},
        "data": {
            k: v
            for k, v in base.data.__dict__.items()
            if k in ("roots", "cache_size", "holdout", "cache_dir", "min_side", "workers")
        },
        "augment": {
            "size": 32,
            "crop_min": 1.0,
            "flip": False,
            "p_grain": 0.0,
            "p_blur": 0.0,
            "p_fade": 0.0,
            "p_scratches": 0.0,
        },
        "train": {
            k: getattr(base.train, k)
            for k in (
                "mode",
                "steps",
                "batch_size",
                "lr",
                "warmup_steps",
                "pretrained_encoder",
                "checkpoint_every",
                "sample_every",
                "log_every",
                "out_dir",
            )
        }
        | train,
        "hints": {"p_none": 0.25},
    }
    raw["data"]["roots"] = list(raw["data"]["roots"])
    return recipe_from_dict(raw)


def test_hint_model_takes_optional_hints_and_others_refuse_them():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(decoder_channels=(16, 16, 16), hints=True)).eval()
    lightness = torch.rand(2, 1, 40, 56) * 100
    with torch.no_grad():
        auto = model(lightness)
        zeros = model(lightness, hints=torch.zeros(2, HINT_CHANNELS, 40, 56))
        hinted = model(lightness, hints=torch.ones(2, HINT_CHANNELS, 40, 56) * 0.5)
    assert auto.shape == (2, 2, 40, 56) and torch.equal(auto, zeros)
    assert not torch.allclose(auto, hinted)
    plain = Generator(GeneratorConfig(decoder_channels=(16, 16, 16))).eval()
    with pytest.raises(ValueError, match="no colour hints"):
        plain(lightness, hints=torch.zeros(2, HINT_CHANNELS, 40, 56))
    with pytest.raises(ValueError, match="hints must be"):
        model(lightness, hints=torch.zeros(2, 2, 40, 56))


def test_simulated_hints_reveal_true_mean_colour_in_patches():
    rgb = torch.zeros(4, 3, 32, 32)
    rgb[:, 0] = 0.8  # a red picture: every hint must carry red's ab
    gen = torch.Generator().manual_seed(1)
    hints = simulate_hints(rgb, HintSimulation(p_none=0.0, geometric_p=0.5), gen)
    mask = hints[:, 2] > 0
    assert mask.any(dim=(1, 2)).all()  # p_none 0: every image has a point
    assert (hints[:, 0][mask] > 0.3).all() and torch.equal(
        hints[:, :2][~mask.unsqueeze(1).expand(-1, 2, -1, -1)], torch.zeros(int((~mask).sum()) * 2)
    )
    none = simulate_hints(rgb, HintSimulation(p_none=1.0), torch.Generator().manual_seed(1))
    assert not none.any()
    with pytest.raises(ValueError):
        HintSimulation(p_none=1.5)


def test_fixed_point_hints_are_seeded_squares():
    rgb = torch.rand(3, 3, 48, 48)
    a, b = fixed_point_hints(rgb, 10, 3, seed=7), fixed_point_hints(rgb, 10, 3, seed=7)
    assert torch.equal(a, b)
    covered = (a[:, 2] > 0).sum(dim=(1, 2))
    assert ((covered > 0) & (covered <= 90)).all()


def test_wsd_schedule_is_flat_then_decays():
    total, warm, decay = 1000, 100, 200
    assert lr_factor(0, warm, total, "wsd", decay) == pytest.approx(1 / warm)
    assert lr_factor(500, warm, total, "wsd", decay) == 1.0 == lr_factor(799, warm, total, "wsd", decay)
    assert lr_factor(900, warm, total, "wsd", decay) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(1000, warm, total, "wsd", decay) == pytest.approx(0.05)


def test_sparse_classification_loss_equals_the_dense_soft_encoding():
    centers = in_gamut_bin_centers()
    torch.manual_seed(0)
    ab = torch.randn(2, 2, 6, 7) * 40
    logits = torch.randn(2, centers.shape[0], 6, 7)
    weights = torch.rand(centers.shape[0]) + 0.5
    target = soft_encode(ab, centers)
    dense = (-(target * F.log_softmax(logits, 1)).sum(1) * weights[target.argmax(1)]).mean()
    assert float(classification_loss(logits, ab, centers, weights)) == pytest.approx(float(dense), rel=1e-5)


def test_cap_per_class_keeps_a_content_defined_subset():
    entries = [
        IndexEntry(f"imagenette/train_n0144076{c}_{i}.jpg", 1, f"{(i * 7919 + c) % 997:064x}")
        for c in range(2)
        for i in range(10)
    ]
    entries.append(IndexEntry("urban/a.jpg", 1, "f" * 64))
    index = TrainIndex(Path("/x"), tuple(entries))
    capped = cap_per_class(index, 3, ["imagenette"])
    assert len(capped.entries) == 2 * 3 + 1
    assert class_key("imagenette/train_n01440764_5.jpg") == "imagenette/n01440764"
    # the same subset whatever the order of the index
    reversed_index = TrainIndex(Path("/x"), tuple(reversed(entries)))
    assert {e.path for e in cap_per_class(reversed_index, 3, ["imagenette"]).entries} == {
        e.path for e in capped.entries
    }


def test_hint_training_writes_a_resume_point_and_resumes_from_weights(shapes: Path, tmp_path: Path):
    first = build_trainer(hint_recipe(shapes, tmp_path / "a", steps=6, checkpoint_every=3))
    rows = run_logged(first)
    assert "holdout_hint10_psnr" in next(r for r in rows if "holdout_psnr" in r)
    resume = tmp_path / "a" / "resume.safetensors"
    assert read_metadata(resume)["step"] == "6"
    # A fresh out dir (a new clone) continues from the committed weights: step and model, not the optimiser.
    later = build_trainer(hint_recipe(shapes, tmp_path / "b", steps=9, resume_weights=str(resume), rewarm_steps=2))
    assert later.step == 6
    model, _ = load_generator(resume)
    for k, v in model.state_dict().items():
        assert torch.equal(v, later.model.state_dict()[k]), k
    rows = run_logged(later)
    assert [r["step"] for r in rows] == [7, 8, 9]
    assert rows[0]["lr"] < rows[1]["lr"]  # the learning rate warms up again after a weights-only resume


def test_resume_weights_of_another_architecture_is_refused(shapes: Path, tmp_path: Path, tiny_model_path: Path):
    from vidcolor.errors import ModelError
    from vidcolor.models.weights import save_generator

    other = tmp_path / "other.safetensors"
    save_generator(Generator(), other, {"step": "3"})
    with pytest.raises(ModelError, match="another architecture"):
        build_trainer(hint_recipe(shapes, tmp_path / "c", steps=6, resume_weights=str(other)))


@pytest.mark.slow
def test_two_processes_train_like_one_batch_split(shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from vidcolor.train.parallel import run_data_parallel

    monkeypatch.chdir(tmp_path)  # a relative run folder, as the shipped recipes name theirs
    stale = tmp_path / "ddp" / ".ddp"  # a killed run's rendezvous file: must not confuse this one
    stale.mkdir(parents=True)
    (stale / "init").write_bytes(b"\x00" * 64)
    result = run_data_parallel(hint_recipe(shapes, Path("ddp"), steps=4, checkpoint_every=2, procs=2))
    assert result.steps == 4 and result.weights.exists()
    assert not stale.exists() and not (tmp_path / ".ddp.lock").exists()  # nothing left behind
    assert read_metadata(tmp_path / "ddp" / "resume.safetensors")["step"] == "4"
    lines = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()
    assert [int(x.split(",")[0]) for x in lines[1:]] == [1, 2, 3, 4]  # one writer: rank 0
