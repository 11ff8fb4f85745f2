"""Trainers on a tiny generated data set: each mode learns, resumes exactly, writes its outputs.

Images are coloured shapes on colour gradients (48 px, cropped to 32 px); the generator has a
random encoder (pretrained_encoder = false) and a narrow decoder, so every run takes a second.
With 8 images, 2 held out and a batch of 6 without augmentation, every step sees the same batch:
a loss that does not fall means the step is broken, not that the data were unlucky.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from helpers import SMALL, make_shapes, recipe, run_logged  # noqa: E402

from vidcolor.errors import InputError, ModelError  # noqa: E402
from vidcolor.models.generator import Generator, GeneratorConfig  # noqa: E402
from vidcolor.models.weights import load_generator, save_generator  # noqa: E402
from vidcolor.train.modes import build_trainer  # noqa: E402
from vidcolor.train.recipe import recipe_from_dict  # noqa: E402


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shapes")
    make_shapes(folder, 8)
    return folder


def falls(values: list[float]) -> bool:
    return float(np.mean(values[-3:])) < 0.95 * float(np.mean(values[:3]))


def test_classification_learns_and_writes_outputs(shapes: Path, tmp_path: Path) -> None:
    trainer = build_trainer(recipe(shapes, tmp_path / "cls"))
    rows = run_logged(trainer)
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert falls([r["loss"] for r in rows]), [round(r["loss"], 3) for r in rows]
    out = tmp_path / "cls"
    with (out / "metrics.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in table] == list(range(1, 13))
    assert table[5]["holdout_psnr"] and table[5]["gray_psnr"] and float(table[0]["loss"]) > 0
    grid = cv2.imread(str(out / "samples" / "step0000006.png"))
    assert grid.shape == (2 * 32 + 2, 3 * 32 + 2 * 2, 3)  # 2 holdout rows of grey | prediction | truth
    assert (out / "samples" / "step0000012.png").exists()
    model, meta = load_generator(out / "model.safetensors")
    assert meta["steps"] == "12" and meta["mode"] == "classification" and model.config.head == "classification"


def test_resume_continues_exactly(shapes: Path, tmp_path: Path) -> None:
    straight = build_trainer(recipe(shapes, tmp_path / "a", steps=6, checkpoint_every=3))
    straight.run()
    first = build_trainer(recipe(shapes, tmp_path / "b", steps=6, checkpoint_every=3))
    first.run(stop=lambda: first.step >= 3)  # an interrupted run: its last checkpoint is at step 3
    saved = {k: v.clone() for k, v in first.model.state_dict().items()}
    resumed = build_trainer(recipe(shapes, tmp_path / "b", steps=6, checkpoint_every=3))
    assert resumed.step == 3
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert resumed.opt.state_dict()["state"].keys() == first.opt.state_dict()["state"].keys()
    rows = run_logged(resumed)
    assert [r["step"] for r in rows] == [4, 5, 6]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "b" / "metrics.csv").open())]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_regression_learns_with_perceptual_loss(shapes: Path, tmp_path: Path) -> None:
    trainer = build_trainer(recipe(shapes, tmp_path / "reg", mode="regression", steps=10, lr=5e-3))
    rows = run_logged(trainer)
    assert trainer.model.config.head == "regression" and trainer.perceptual is not None
    assert falls([r["huber"] for r in rows]), [round(r["huber"], 2) for r in rows]
    assert all(r["perceptual"] > 0 for r in rows)


def test_regression_with_user_vgg16_weights(shapes: Path, tmp_path: Path) -> None:
    from vidcolor.train.vgg import VGG16Features

    torch.manual_seed(0)
    state = {k: v for k, v in VGG16Features().state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision files carry a classifier: ignored
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    trainer = build_trainer(
        recipe(shapes, tmp_path / "vgg", mode="regression", steps=2, perceptual_net=f"vgg16:{path}")
    )
    assert isinstance(trainer.perceptual.net, VGG16Features)
    assert torch.equal(trainer.perceptual.net.features[0].weight, state["features.0.weight"])
    rows = run_logged(trainer)
    assert all(r["perceptual"] > 0 for r in rows)
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not torchvision vgg16"):
        build_trainer(
            recipe(shapes, tmp_path / "vgg2", mode="regression", perceptual_net=f"vgg16:{tmp_path / 'bad.pth'}")
        )


def test_gan_pretrains_critic_then_fine_tunes_and_resumes(shapes: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    init = tmp_path / "init.safetensors"
    save_generator(Generator(GeneratorConfig(decoder_channels=(16, 16, 16))), init)
    gan = dict(
        mode="gan",
        init_from=str(init),
        critic_pretrain_steps=8,
        steps=3,
        critic_channels=8,
        critic_lr=2e-3,
        checkpoint_every=4,
    )
    trainer = build_trainer(recipe(shapes, tmp_path / "gan", **gan))
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run(stop=lambda: trainer.steps_done >= 9)
    rows = run_logged(trainer)  # continues in memory from step 9 to 11
    assert trainer.critic_step == 8 and trainer.step == 3 and rows[0]["step"] == 10
    # The critic pretrained alone: the generator did not move while it did.
    ckpt = torch.load(tmp_path / "gan" / "checkpoint.pt", weights_only=True)
    assert {"critic", "critic_optimizer", "critic_step", "model", "optimizer"} <= set(ckpt)
    moved = [k for k in start if k.endswith("weight") and not torch.equal(start[k], trainer.model.state_dict()[k])]
    assert moved, "the joint phase must update the generator"
    assert all(r["phase"] == "joint" and r["adv"] > 0 for r in rows)

    fresh = build_trainer(recipe(shapes, tmp_path / "gan2", **gan))
    critic_rows = run_logged(fresh, stop=lambda: fresh.critic_step >= 8)
    assert [r["phase"] for r in critic_rows] == ["critic"] * 8
    assert falls([r["critic_loss"] for r in critic_rows]), [round(r["critic_loss"], 3) for r in critic_rows]
    for k, v in start.items():
        assert torch.equal(v, fresh.model.state_dict()[k]), k
    resumed = build_trainer(recipe(shapes, tmp_path / "gan2", **gan))
    assert resumed.critic_step == 8 and resumed.step == 0
    for k, v in fresh.critic.state_dict().items():
        assert torch.equal(v, resumed.critic.state_dict()[k]), k


def test_backbone_export_import_roundtrip(shapes: Path, tmp_path: Path) -> None:
    from vidcolor.train.backbone import export_backbone, import_backbone, load_backbone

    trainer = build_trainer(recipe(shapes, tmp_path / "src", steps=2))
    trainer.run()
    encoder = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    for source in (tmp_path / "src" / "model.safetensors", tmp_path / "src" / "checkpoint.pt"):
        target = tmp_path / f"{source.stem}-backbone.safetensors"
        export_backbone(source, target)
        loaded = load_backbone(target)
        assert loaded.keys() == encoder.keys() and all(torch.equal(loaded[k], encoder[k]) for k in encoder)
    # A regression run starts from the classification model's encoder (Colorify's transfer).
    reg = build_trainer(recipe(shapes, tmp_path / "reg", mode="regression", steps=0, init_backbone=str(target)))
    assert all(torch.equal(reg.model.encoder.state_dict()[k], encoder[k]) for k in encoder)
    fresh = Generator(GeneratorConfig(decoder_channels=(16, 16, 16)))
    import_backbone(fresh.encoder, target)
    assert torch.equal(fresh.encoder._conv_stem.weight, encoder["_conv_stem.weight"])
    with pytest.raises(ModelError, match="not a vidcolor backbone"):
        load_backbone(tmp_path / "src" / "model.safetensors")


def test_precision_flags(shapes: Path, tmp_path: Path) -> None:
    trainer = build_trainer(recipe(shapes, tmp_path / "bf16", steps=2, amp="bf16"))
    assert trainer.precision.name == "bf16"
    rows = run_logged(trainer)
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert build_trainer(recipe(shapes, tmp_path / "auto", steps=0)).precision.name == "fp32"  # auto on CPU
    with pytest.raises(InputError, match="fp16"):
        build_trainer(recipe(shapes, tmp_path / "fp16", steps=1, amp="fp16"))


def test_training_index(shapes: Path, tmp_path: Path) -> None:
    from vidcolor.train.index import build_index, read_index, write_index

    folder = tmp_path / "data"
    make_shapes(folder, 8, seed=1)
    grey = np.full((48, 48, 3), 120, np.uint8)
    cv2.imwrite(str(folder / "grey.png"), grey)  # filtered out: no colour
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((8, 8, 3), np.uint8) + (0, 0, 255))  # too small
    from vidcolor.train.data import DataFilter

    index = build_index(folder, DataFilter(min_side=32), workers=1)
    assert [e.path for e in index.entries] == [f"shape{i:03d}.png" for i in range(8)]
    path = tmp_path / "index" / "train.tsv"
    write_index(index, path)
    again = read_index(path)
    assert again.root == folder.resolve() and again.entries == index.entries
    assert build_index(folder, DataFilter(min_side=32), workers=1).entries == index.entries  # reproducible
    r = recipe(shapes, tmp_path / "idx", steps=1)
    data = {
        **{k: getattr(r.data, k) for k in ("cache_size", "holdout", "cache_dir", "min_side", "workers")},
        "roots": [],
        "index": str(path),
    }
    r2 = recipe_from_dict(
        {
            "model": SMALL,
            "data": data,
            "augment": {"size": 32},
            "train": {**{k: getattr(r.train, k) for k in ("steps", "batch_size", "pretrained_encoder", "out_dir")}},
        }
    )
    trainer = build_trainer(r2)
    assert len(trainer.images) == 8
    (folder / "shape003.png").write_bytes(b"changed")
    with pytest.raises(InputError, match="changed since the index"):
        build_trainer(r2)


@pytest.mark.parametrize(
    "train, message",
    [
        ({"mode": "pix2pix"}, "train.mode"),
        ({"steps": "many"}, "train.steps"),
        ({"mode": "gan"}, "init_from"),
        ({"amp": "fp8"}, "train.amp"),
        ({"perceptual_net": "resnet"}, "perceptual_net"),
        ({"learning_rate": 1.0}, "unknown keys"),
    ],
)
def test_bad_recipes_are_input_errors(shapes: Path, tmp_path: Path, train: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        recipe(shapes, tmp_path / "x", **train)


def test_init_from_must_exist(shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="init_from"):
        build_trainer(recipe(shapes, tmp_path / "g", mode="gan", init_from=str(tmp_path / "none.safetensors")))
