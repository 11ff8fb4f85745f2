"""DeOldify generators without fastai: layout of the state dict, layer semantics, import paths.

The expected keys and shapes below were worked out by hand from DeOldify's sources
(deoldify/unet.py DynamicUnetDeep/Wide, deoldify/layers.py custom_conv_layer, fastai/layers.py
conv_layer, PixelShuffle_ICNR, SelfAttention, res_block, SequentialEx), not printed from our model.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.errors import ModelError, OutputError
from vidcolor.models import deoldify as dd
from vidcolor.models import registry
from vidcolor.models.registry import load_model
from vidcolor.models.resnet import resnet_body
from vidcolor.models.weights import sha256_file

runner = CliRunner()


# --------------------------------------------------------------------------- helpers


def seeded_generator(kind: str, seed: int = 0, calibrate: bool = True) -> dd.DeOldifyUnet:
    """A generator with random weights, a non-zero attention gate, and BatchNorm statistics
    taken from one random batch (so activations stay in a sane range, as in a trained model)."""
    torch.manual_seed(seed)
    model = dd.build_generator(kind)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.3)
        if calibrate:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = 1.0
            model.train()(torch.randn(2, 3, 64, 64))
    return model.eval()


def head_output(model: dd.DeOldifyUnet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-sigmoid head output, final output): random weights saturate the sigmoid, so the
    comparison is made before it too."""
    seen: list[torch.Tensor] = []
    handle = model.layers[11].register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.inference_mode():
            out = model(x)
    finally:
        handle.remove()
    return seen[0], out


def save_fastai_style(state: dict, path: Path, with_opt: bool) -> None:
    """What fastai's learn.save writes: {'model': state, 'opt': optimiser state} or the bare state."""
    if with_opt:
        # learn.save keeps fastai's discriminative learning rates as slice objects.
        opt = {
            "state": {},
            "param_groups": [{"lr": np.float64(1e-4), "betas": (0.0, 0.99), "weight_decay": 1e-3, "params": [0, 1, 2]}],
            "hypers": [{"lr": slice(1e-5, 1e-3, None)}],
        }
        torch.save({"model": state, "opt": opt}, path)
    else:
        torch.save(state, path)


# --------------------------------------------------------------------------- layout


EXPECTED = {
    "artistic": {
        "layers.0.0.weight": (64, 3, 7, 7),
        "layers.0.4.2.conv2.weight": (64, 64, 3, 3),
        "layers.0.5.0.downsample.0.weight": (128, 64, 1, 1),
        "layers.0.7.2.bn2.running_var": (512,),
        "layers.1.weight": (512,),
        "layers.3.0.0.weight_orig": (1024, 512, 3, 3),
        "layers.3.0.0.weight_v": (4608,),
        "layers.3.0.2.running_mean": (1024,),
        "layers.3.1.0.weight_orig": (512, 1024, 3, 3),
        "layers.4.shuf.conv.0.weight_orig": (1024, 512, 1, 1),
        "layers.4.shuf.conv.1.weight": (1024,),
        "layers.4.bn.weight": (256,),
        "layers.4.conv1.0.weight_orig": (768, 512, 3, 3),
        "layers.4.conv2.0.weight_orig": (768, 768, 3, 3),
        "layers.5.shuf.conv.0.weight_orig": (1536, 768, 1, 1),
        "layers.5.conv2.3.gamma": (1,),
        "layers.5.conv2.3.query.weight_orig": (96, 768, 1),
        "layers.5.conv2.3.key.weight_u": (96,),
        "layers.5.conv2.3.value.weight_v": (768,),
        "layers.6.conv1.0.weight_orig": (672, 448, 3, 3),
        "layers.7.shuf.conv.0.weight_orig": (1344, 672, 1, 1),
        "layers.7.conv1.0.weight_orig": (300, 400, 3, 3),
        "layers.7.conv2.2.weight": (300,),
        "layers.8.conv.0.weight_g": (1200, 1, 1, 1),
        "layers.8.conv.0.weight_v": (1200, 300, 1, 1),
        "layers.8.conv.0.bias": (1200,),
        "layers.10.layers.0.0.weight_orig": (303, 303, 3, 3),
        "layers.10.layers.0.0.bias": (303,),
        "layers.10.layers.1.0.weight_u": (303,),
        "layers.11.0.weight_orig": (3, 303, 1, 1),
        "layers.11.0.bias": (3,),
    },
    "stable": {
        "layers.0.4.0.conv3.weight": (256, 64, 1, 1),
        "layers.0.4.0.downsample.1.running_mean": (256,),
        "layers.0.6.22.conv2.weight": (256, 256, 3, 3),
        "layers.0.7.0.downsample.0.weight": (2048, 1024, 1, 1),
        "layers.1.running_var": (2048,),
        "layers.3.0.0.weight_orig": (4096, 2048, 3, 3),
        "layers.3.1.0.weight_v": (36864,),
        "layers.4.shuf.conv.0.weight_orig": (2048, 2048, 1, 1),
        "layers.4.bn.weight": (1024,),
        "layers.4.conv.0.weight_orig": (512, 1536, 3, 3),
        "layers.5.conv.3.query.weight_orig": (64, 512, 1),
        "layers.5.conv.3.value.weight_orig": (512, 512, 1),
        "layers.6.conv.0.weight_orig": (512, 768, 3, 3),
        "layers.7.shuf.conv.0.weight_orig": (1024, 512, 1, 1),
        "layers.7.conv.0.weight_orig": (256, 320, 3, 3),
        "layers.8.conv.0.weight_v": (1024, 256, 1, 1),
        "layers.10.layers.1.0.weight_orig": (259, 259, 3, 3),
        "layers.11.0.weight_orig": (3, 259, 1, 1),
    },
}
# Parameter counts (BatchNorm statistics and spectral-norm u/v excluded) and tensor bytes (float32).
PARAMS = {"artistic": 63_646_881, "stable": 218_222_197}
STATE_MB = {"artistic": 255.07, "stable": 873.92}


@pytest.mark.parametrize("kind", ["artistic", "stable"])
def test_state_dict_layout_matches_deoldify(kind: str) -> None:
    shapes = dd.expected_shapes(kind)
    for key, shape in EXPECTED[kind].items():
        assert shapes.get(key) == shape, key
    # Stateless members at their fastai indices: 2 ReLU, 9 dense merge, 12 sigmoid range.
    assert not any(k.startswith(("layers.2.", "layers.9.", "layers.12.")) for k in shapes)
    assert {k.split(".")[1] for k in shapes} == {"0", "1", "3", "4", "5", "6", "7", "8", "10", "11"}
    # Self-attention only in the second U-Net block; no block has a bias next to a BatchNorm.
    assert {k.split(".")[1] for k in shapes if ".query." in k} == {"5"}
    assert "layers.4.shuf.conv.0.bias" not in shapes and "layers.3.0.0.bias" not in shapes
    # Old-style hooks' names, never the parametrization API's.
    assert not any("parametrizations" in k or k.endswith(".weight_orig0") for k in shapes)
    state = dd.build_generator(kind, "meta").state_dict()
    assert dd.parameter_count(state) == PARAMS[kind]
    total_mb = sum(v.numel() * v.element_size() for v in state.values()) / 1e6
    assert total_mb == pytest.approx(STATE_MB[kind], abs=0.01)


def test_video_is_the_stable_architecture() -> None:
    assert dd.expected_shapes("video") == dd.expected_shapes("stable")


@pytest.mark.parametrize("arch,device", [("resnet34", "cpu"), ("resnet101", "meta")])
def test_skip_indices_follow_fastai_rule(arch: str, device: str) -> None:
    """fastai hooks the children after which the feature size changes (sizes taken at 256x256)."""
    with torch.device(device):
        body = resnet_body(arch).eval()
        x = torch.zeros(1, 3, 256, 256)
    sizes = []
    with torch.no_grad():
        for child in body:
            x = child(x)
            sizes.append(x.shape[-1])
    idx = [i for i in range(len(sizes) - 1) if sizes[i] != sizes[i + 1]]
    if sizes[0] != sizes[1]:
        idx = [0] + idx
    assert tuple(reversed(idx)) == dd.SKIP_INDICES
    assert sizes[0] == 128  # != 256, so fastai appends the final PixelShuffle upsampler


# --------------------------------------------------------------------------- layer semantics


def test_spectral_conv_matches_torch_spectral_norm() -> None:
    torch.manual_seed(1)
    ref = nn.utils.spectral_norm(nn.Conv2d(6, 5, 3, padding=1, bias=True))
    ours = dd.SpectralConv(6, 5, 3, bias=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 9, 9)
    # Training mode: one power iteration, u and v updated in place, identical in both.
    ref.train(), ours.train()
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.weight_u, ref.weight_u)
    ref.eval(), ours.eval()
    torch.testing.assert_close(ours(x), ref(x))

    ref1 = nn.utils.spectral_norm(nn.Conv1d(16, 2, 1, bias=False))
    ours1 = dd.SpectralConv(16, 2, 1, dims=1, bias=False).eval()
    ours1.load_state_dict(ref1.eval().state_dict())
    x1 = torch.randn(2, 16, 7)
    torch.testing.assert_close(ours1(x1), ref1(x1))


def test_legacy_spectral_state_is_converted() -> None:
    """A pre-1.1 state (normalised ``weight`` kept, no ``weight_v``) gives the same layer output."""
    torch.manual_seed(2)
    ref = nn.utils.spectral_norm(nn.Conv2d(4, 8, 3, padding=1))
    x = torch.randn(1, 4, 6, 6)
    ref.train()
    for _ in range(30):  # converge u, v as training would
        ref(x)
    ref.eval()
    expected = ref(x)
    legacy = {
        "weight_orig": ref.weight_orig.detach(),
        "weight_u": ref.weight_u,
        "weight": ref.weight.detach(),
        "bias": ref.bias.detach(),
    }
    v = dd._legacy_spectral_v(legacy["weight_orig"], legacy["weight_u"], legacy["weight"])
    ours = dd.SpectralConv(4, 8, 3).eval()
    ours.load_state_dict(
        {"weight_orig": legacy["weight_orig"], "weight_u": legacy["weight_u"], "weight_v": v, "bias": legacy["bias"]}
    )
    torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)


def test_weight_norm_conv_matches_torch_weight_norm() -> None:
    torch.manual_seed(3)
    ref = nn.utils.weight_norm(nn.Conv2d(5, 12, 1))
    ours = dd.WeightNormConv(5, 12, 1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(ours(x), ref(x))


def test_pixel_shuffle_icnr_starts_checkerboard_free() -> None:
    up = dd.PixelShuffleUp(8, 4, norm="weight", bn=False)
    with torch.no_grad():
        y = up.shuf(up.relu(up.conv(torch.randn(1, 8, 5, 5))))
    # ICNR: the four sub-pixels of each output cell are equal before the blur.
    torch.testing.assert_close(y[..., 0::2, 0::2], y[..., 1::2, 1::2])
    assert up(torch.randn(1, 8, 5, 5)).shape == (1, 4, 10, 10)


def test_self_attention_gate() -> None:
    sa = dd.SelfAttention(16)
    x = torch.randn(2, 16, 3, 5)
    torch.testing.assert_close(sa(x), x)  # gamma 0: identity
    with torch.no_grad():
        sa.gamma.fill_(1.0)
    assert not torch.allclose(sa(x), x)


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def artistic() -> dd.DeOldifyUnet:
    return seeded_generator("artistic")


@pytest.mark.parametrize("with_opt", [True, False])
def test_artistic_checkpoint_loads_identically(tmp_path: Path, artistic: dd.DeOldifyUnet, with_opt: bool) -> None:
    path = tmp_path / "ColorizeArtistic_gen.pth"
    state = artistic.state_dict()
    save_fastai_style(state, path, with_opt)
    loaded = dd.read_checkpoint(path)
    assert set(loaded) == set(state)
    color_model = load_model(f"deoldify-artistic:{path}")
    assert isinstance(color_model, dd.DeOldifyModel)
    got = color_model.generator.state_dict()
    assert set(got) == set(state)  # every key consumed, nothing left over
    assert all(torch.equal(got[k], state[k]) for k in state)
    x = torch.randn(1, 3, 64, 64)
    head_a, out_a = head_output(artistic, x)
    head_b, out_b = head_output(color_model.generator, x)
    assert torch.equal(head_a, head_b) and torch.equal(out_a, out_b)
    assert head_a.std() > 0
    info = color_model.info
    assert (info.keep_aspect, info.default_render_factor, info.default_render_factor_video) == (False, 35, 21)
    assert info.extra["kind"] == "artistic" and len(info.sha256) == 64


def test_missing_num_batches_tracked_is_accepted(tmp_path: Path, artistic: dd.DeOldifyUnet) -> None:
    state = {k: v for k, v in artistic.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = dd.load_deoldify_model("artistic", path)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(head_output(model.generator, x)[0], head_output(artistic, x)[0])


def test_import_cli_round_trip(tmp_path: Path, artistic: dd.DeOldifyUnet) -> None:
    src = tmp_path / "ColorizeArtistic_gen.pth"
    save_fastai_style(artistic.state_dict(), src, with_opt=True)
    before = src.read_bytes()
    res = runner.invoke(app, ["models", "import-deoldify", str(src), "--kind", "artistic", "--name", "my-artistic"])
    assert res.exit_code == 0, res.output
    dest = tmp_path / "ColorizeArtistic_gen.safetensors"
    assert dest.is_file() and not list(tmp_path.glob("*.partial"))
    assert src.read_bytes() == before  # input untouched
    assert f"{PARAMS['artistic']:,}" in res.output
    # Our file loads without pickle, through the registry's path branch.
    model = load_model(str(dest))
    assert isinstance(model, dd.DeOldifyModel) and model.info.name == "my-artistic"
    x = torch.randn(1, 3, 48, 48)
    assert torch.equal(head_output(model.generator, x)[0], head_output(artistic, x)[0])
    # ... and as deoldify-KIND:PATH.
    assert isinstance(load_model(f"deoldify-artistic:{dest}"), dd.DeOldifyModel)
    with pytest.raises(ModelError, match="not video"):
        load_model(f"deoldify-video:{dest}")
    # Refuses to overwrite without --overwrite; info shows metadata and sha256.
    again = runner.invoke(app, ["models", "import-deoldify", str(src), "--kind", "artistic"])
    assert again.exit_code == 2 and "exists" in again.output
    info = runner.invoke(app, ["models", "info", str(dest)])
    assert info.exit_code == 0, info.output
    assert "deoldify-generator" in info.output and sha256_file(dest) in info.output
    info_pth = runner.invoke(app, ["models", "info", str(src)])
    assert info_pth.exit_code == 0 and "artistic" in info_pth.output


def test_registered_converted_model(tmp_path: Path, artistic: dd.DeOldifyUnet, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    digest = dd.save_deoldify(artistic, weights / "deoldify-artistic.safetensors", {"name": "deoldify-artistic"})
    (weights / "registry.json").write_text(
        '{"models": [{"name": "deoldify-artistic", "file": "deoldify-artistic.safetensors", '
        f'"version": "2019.05", "sha256": "{digest}", '
        '"default_render_factor": 35, "default_render_factor_video": 21}]}'
    )
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(registry, "REGISTRY_FILE", weights / "registry.json")
    model = load_model("deoldify-artistic")
    assert model.info.version == "2019.05" and model.info.sha256 == digest
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "deoldify-artistic" in listed.output
    info = runner.invoke(app, ["models", "info", "deoldify-artistic"])
    assert info.exit_code == 0 and digest in info.output
    monkeypatch.setattr(registry, "REGISTRY_FILE", tmp_path / "absent.json")
    empty = runner.invoke(app, ["models", "list"])
    assert empty.exit_code == 0 and "No models are registered" in empty.output


# --------------------------------------------------------------------------- bad files


def test_wrong_kind_names_what_differs(tmp_path: Path, artistic: dd.DeOldifyUnet) -> None:
    path = tmp_path / "ColorizeArtistic_gen.pth"
    torch.save(artistic.state_dict(), path)
    with pytest.raises(ModelError) as err:
        dd.load_deoldify_model("video", path)
    msg = str(err.value)
    assert "missing" in msg and "unexpected" in msg and "looks like a DeOldify artistic" in msg and "\n" not in msg
    res = runner.invoke(app, ["models", "import-deoldify", str(path), "--kind", "stable"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "do not fit" in res.output
    assert not (tmp_path / "ColorizeArtistic_gen.safetensors").exists()


def test_missing_and_misshapen_keys(tmp_path: Path, artistic: dd.DeOldifyUnet) -> None:
    state = dict(artistic.state_dict())
    del state["layers.5.conv2.3.gamma"]
    state["layers.11.0.bias"] = torch.zeros(4)
    with pytest.raises(
        ModelError,
        match=r"1 missing \(layers\.5\.conv2\.3\.gamma\).*1 of wrong shape \(layers\.11\.0\.bias \(4,\) vs \(3,\)\)",
    ):
        dd.fit_state(state, "artistic", "f.pth")


def test_unreadable_and_unsafe_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        dd.read_checkpoint(junk)
    # A pickle that would run code is refused by the weights-only loader.
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"model": Exploit()}, f)
    with pytest.raises(ModelError) as refused:
        dd.read_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()
    # The message names the refused global, and never passes on torch's advice to load unsafely.
    assert "weights_only" not in str(refused.value) and "()" not in str(refused.value)
    # Only slice is allowed beyond torch's own set: any other global (here functools.partial,
    # which could call anything) is still refused.
    import functools

    partial = tmp_path / "partial.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "opt": {"f": functools.partial(int, "3")}}, partial)
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        dd.read_checkpoint(partial)
    notdict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], notdict)
    with pytest.raises(ModelError, match="not a model state dict"):
        dd.read_checkpoint(notdict)
    with pytest.raises(ModelError, match="not found"):
        dd.read_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(ModelError, match="unknown DeOldify kind"):
        load_model(f"deoldify-sepia:{junk}")
    with pytest.raises(OutputError, match=".safetensors"):
        dd.import_deoldify(junk, "artistic", tmp_path / "out.bin")


class Exploit:
    def __reduce__(self):  # runs os.system on a full (unsafe) unpickle
        import os

        return (os.system, (f"touch {Path(__file__).parent / 'pwned'}",))


# --------------------------------------------------------------------------- ColorModel wrapper


class ConstantColor(nn.Module):
    """Stands in for the generator: outputs one colour, ImageNet-normalised as DeOldify's does."""

    def __init__(self, rgb: tuple[float, float, float] | None) -> None:
        super().__init__()
        self.rgb = rgb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rgb is None:
            return x  # grey in, grey out
        mean = torch.tensor(dd.IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(dd.IMAGENET_STD).view(1, 3, 1, 1)
        colour = torch.tensor(self.rgb).view(1, 3, 1, 1).expand_as(x)
        return (colour - mean) / std


def test_predict_chroma_pre_and_post_processing() -> None:
    from vidcolor.color import rgb_to_chroma

    info = dd.model_info("video", "t", "")
    luma = torch.rand(2, 1, 32, 32)
    grey = dd.DeOldifyModel(ConstantColor(None), info).predict_chroma(luma)  # type: ignore[arg-type]
    assert grey.shape == (2, 2, 32, 32)
    assert grey.abs().max() < 1e-5  # grey to 3 channels, normalise, denormalise: no colour
    orange = (0.9, 0.5, 0.1)
    model = dd.DeOldifyModel(ConstantColor(orange), info)  # type: ignore[arg-type]
    got = model.predict_chroma(torch.rand(1, 1, 24, 40), "bt709")  # not square: stretched and back
    want = rgb_to_chroma(torch.tensor(orange).view(1, 3, 1, 1), "bt709")
    assert got.shape == (1, 2, 24, 40)
    torch.testing.assert_close(got, want.expand(1, 2, 24, 40), atol=1e-5, rtol=0)


def test_real_generator_predicts_chroma(artistic: dd.DeOldifyUnet) -> None:
    model = dd.DeOldifyModel(artistic, dd.model_info("artistic", "t", "")).to(torch.device("cpu"))
    chroma = model.predict_chroma(torch.rand(1, 1, 64, 64))
    assert chroma.shape == (1, 2, 64, 64) and torch.isfinite(chroma).all()
    assert chroma.abs().max() <= 0.5 + 1e-6


# --------------------------------------------------------------------------- the big one


@pytest.mark.slow
def test_wide_generator_round_trip(tmp_path: Path) -> None:
    """ResNet-101 wide (stable/video): ~874 MB of weights, so one bare-state round trip."""
    model = seeded_generator("video", seed=5, calibrate=False)  # saves a slow training pass
    src = tmp_path / "ColorizeVideo_gen.pth"
    torch.save(model.state_dict(), src)
    res = runner.invoke(app, ["models", "import-deoldify", str(src), "--kind", "video"])
    assert res.exit_code == 0, res.output
    assert f"{PARAMS['stable']:,}" in res.output
    src.unlink()  # keep the disk and page cache small; the converted file is what is checked
    converted = load_model(str(tmp_path / "ColorizeVideo_gen.safetensors"))
    assert isinstance(converted, dd.DeOldifyModel) and converted.info.extra["kind"] == "video"
    x = torch.randn(1, 3, 32, 32)
    head_a, out_a = head_output(model, x)
    head_b, out_b = head_output(converted.generator, x)
    assert torch.equal(head_a, head_b) and torch.equal(out_a, out_b)


@pytest.mark.parametrize("text", ["hello", "error 404", "(not a model)", "json", "quit", "rq"])
def test_a_text_file_for_a_checkpoint_is_a_clean_error(tmp_path, text):
    """Texts that start with a pickle opcode (h, e, (, j, q, r) fail inside the unpickler in many
    ways; each must be the one-line "not a PyTorch checkpoint" error, for loading and importing."""
    bad = tmp_path / "ColorizeVideo_gen.pth"
    bad.write_text(text)
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_model(f"deoldify-video:{bad}")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        dd.import_deoldify(bad, "video", tmp_path / "out.safetensors")
