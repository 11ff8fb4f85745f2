"""The generator, its decoding dials, weight files and the registry."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from vidcolor.errors import ModelError
from vidcolor.models import registry
from vidcolor.models.ab_bins import (
    annealed_mean,
    chroma_scale,
    confidence,
    in_gamut_bin_centers,
    rebalance_weights,
    soft_encode,
)
from vidcolor.models.base import render_shape
from vidcolor.models.generator import Generator, GeneratorConfig, count_macs, count_params
from vidcolor.models.weights import load_generator, save_generator, sha256_file


def test_any_input_size_gives_same_size_ab():
    g = Generator().eval()
    for h, w in [(37, 53), (64, 64), (100, 31)]:
        ab = g(torch.rand(2, 1, h, w) * 100)
        assert ab.shape == (2, 2, h, w)
        assert ab.abs().max() <= 128


def test_annealed_mean_temperature_moves_from_mean_to_mode():
    centers = torch.tensor([[0.0, 0.0], [50.0, 0.0]])
    logits = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    mean = annealed_mean(logits, centers, 1.0)[0, :, 0, 0]
    mode_like = annealed_mean(logits, centers, 0.05)[0, :, 0, 0]
    assert 0 < mean[0] < 25 and mode_like[0] < 0.1  # T -> 0 picks the most likely bin


def test_soft_encoding_sums_to_one_and_peaks_at_nearest_bin():
    centers = in_gamut_bin_centers()
    ab = torch.tensor([[[[12.0]], [[-31.0]]]])
    target = soft_encode(ab, centers)
    assert torch.allclose(target.sum(1), torch.ones(1, 1, 1))
    nearest = torch.cdist(ab.view(1, 2), centers).argmin()
    assert int(target.view(-1).argmax()) == int(nearest)


def test_rebalance_weights_favour_rare_bins_with_unit_expectation():
    prior = torch.tensor([0.7, 0.2, 0.1])
    w = rebalance_weights(prior, 0.5)
    assert w[2] > w[1] > w[0]
    assert torch.isclose((prior * w).sum(), torch.tensor(1.0))


def test_bin_bias_undoes_a_tilt():
    g = Generator().eval()
    x = torch.rand(1, 1, 64, 64) * 100
    plain = g(x)
    q = g.config.bins
    g.set_decoding(bin_bias=tuple([0.0] * q))
    assert torch.allclose(g(x), plain, atol=1e-5)  # a zero offset changes nothing
    bias = torch.zeros(q)
    bias[0] = 50.0  # a huge offset on one bin pulls every pixel to that bin's colour
    g.set_decoding(bin_bias=tuple(bias.tolist()), temperature=1.0)
    assert torch.allclose(g(x)[0, :, 10, 10], g.bin_centers[0], atol=1e-2)
    with pytest.raises(ValueError):
        g.set_decoding(bin_bias=(1.0, 2.0))


def test_confidence_shrinks_only_uncertain_colour():
    peaked = torch.full((1, 4, 1, 1), -20.0)
    peaked[0, 2] = 20.0
    flat = torch.zeros(1, 4, 1, 1)
    assert float(confidence(peaked)) == pytest.approx(1.0, abs=1e-6)
    assert float(confidence(flat)) == pytest.approx(0.0, abs=1e-6)
    g = Generator().eval()
    x = torch.rand(1, 1, 64, 64) * 100
    plain = g(x)
    g.set_decoding(confidence_gamma=2.0)
    shrunk = g(x)
    head = g.head_output(x)
    conf = torch.nn.functional.interpolate(
        confidence(head.float()), size=x.shape[-2:], mode="bilinear", align_corners=False
    )
    assert (shrunk.abs() <= plain.abs() + 1e-4).all()  # only ever toward neutral
    assert torch.allclose(shrunk, plain * conf**2, atol=0.5)  # by confidence squared (up to the upsampling)
    with pytest.raises(ValueError):
        g.set_decoding(confidence_gamma=-1.0)
    with pytest.raises(ValueError, match="confidence_gamma"):
        GeneratorConfig.from_dict({"confidence_gamma": "lots"})


def test_chroma_scale_window():
    c = torch.tensor([0.0, 0.3, 0.4, 0.5, 0.6, 1.0])
    assert torch.allclose(chroma_scale(c, 2.0), c**2)  # the window (0, 1): the plain power
    assert torch.allclose(chroma_scale(c, 1.0, 0.3, 0.5), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 1.0]))
    assert torch.allclose(chroma_scale(c, 2.0, 0.3, 0.5), torch.tensor([0.0, 0.0, 0.25, 1.0, 1.0, 1.0]))


def test_confidence_window_keeps_sure_colour_whole_and_removes_unsure_colour():
    g = Generator().eval()
    bias = torch.zeros(g.config.bins)
    bias[40] = 6.0  # one colour much more likely everywhere: the decoding is sure of it
    g.set_decoding(temperature=0.5, bin_bias=tuple(bias.tolist()))
    x = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        conf = confidence(g.head_output(x).float() + g.bin_bias)
        low, high = float(conf.min()), float(conf.max())
        assert high < 0.99
        plain = g(x)
        g.set_decoding(confidence_gamma=1.0, confidence_window=(0.0, low))  # every pixel as sure: kept whole
        assert torch.allclose(g(x), plain, atol=1e-4)
        g.set_decoding(confidence_window=(high + 0.005, 1.0))  # every pixel less sure: neutral
        assert float(g(x).abs().max()) < 1e-4
    with pytest.raises(ValueError, match="confidence_window"):
        g.set_decoding(confidence_window=(0.6, 0.4))
    with pytest.raises(ValueError, match="confidence_low must be below"):
        GeneratorConfig.from_dict({"confidence_low": 0.5, "confidence_high": 0.5})
    with pytest.raises(ValueError, match="confidence_high"):
        GeneratorConfig.from_dict({"confidence_high": 2})


def test_weights_roundtrip_keeps_decoding_and_outputs(tmp_path):
    g = Generator().eval()
    g.set_decoding(
        temperature=0.7,
        bin_bias=tuple(torch.linspace(-1, 1, g.config.bins).tolist()),
        confidence_gamma=1.5,
        confidence_window=(0.2, 0.6),
    )
    path = tmp_path / "m.safetensors"
    sha = save_generator(g, path, {"name": "t"})
    assert sha == sha256_file(path)
    back, meta = load_generator(path, expected_sha256=sha)
    assert back.config == g.config and meta["name"] == "t"
    x = torch.rand(1, 1, 64, 96) * 100
    assert torch.allclose(back(x), g(x), atol=1e-5)
    with pytest.raises(ModelError, match="sha256"):
        load_generator(path, expected_sha256="0" * 64)


def test_weights_file_is_written_with_the_users_umask_and_leaves_no_temp_file(tmp_path):
    # safetensors' own writer creates its files 0600; a shipped model must be readable by all
    # users of a shared install when the umask says so.
    old = os.umask(0o022)
    try:
        save_generator(Generator().eval(), tmp_path / "m.safetensors", {"name": "t"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_weights_file_errors_are_model_errors(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        load_generator(junk)
    with pytest.raises(ModelError):
        load_generator(tmp_path / "missing.safetensors")


def test_size_figures_are_those_of_the_card():
    g = Generator()
    assert 2.5e6 < count_params(g) < 3.5e6
    assert 0.4e9 < count_macs(g, (256, 256)) < 0.7e9


def test_render_shape_keeps_aspect_in_multiples_of_32():
    assert render_shape(480, 854, 16, True) == (192, 352)
    assert render_shape(480, 854, 21, False) == (336, 336)
    h, w = render_shape(1080, 1920, 16, True)
    assert h % 32 == 0 and w % 32 == 0


def test_registry_resolves_default_and_rejects_unknown(tmp_path, monkeypatch):
    g = Generator()
    save_generator(g, tmp_path / "a.safetensors", {"name": "a"})
    entry = {
        "name": "a",
        "file": "a.safetensors",
        "version": "1",
        "sha256": sha256_file(tmp_path / "a.safetensors"),
        "default_render_factor": 20,
        "default_render_factor_video": 12,
        "default": True,
    }
    (tmp_path / "registry.json").write_text(json.dumps({"models": [entry]}))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(registry, "REGISTRY_FILE", tmp_path / "registry.json")
    model = registry.load_model("default")
    assert model.info.name == "a" and model.info.default_render_factor_video == 12
    with pytest.raises(ModelError, match="unknown model"):
        registry.load_model("nope")


def test_shipped_default_model_is_registered_and_intact():
    entries = registry.read_registry()
    defaults = [e for e in entries if e.default]
    assert len(defaults) == 1, "exactly one shipped default model"
    entry = defaults[0]
    assert entry.path.is_file() and sha256_file(entry.path) == entry.sha256
    model = registry.load_model("default")
    luma = torch.linspace(0, 1, 64 * 96).view(1, 1, 64, 96)
    chroma = model.predict_chroma(luma)
    assert chroma.shape == (1, 2, 64, 96) and torch.isfinite(chroma).all()
    assert GeneratorConfig.from_dict(model.generator.config.to_dict()) == model.generator.config


def test_model_families_are_chosen_by_the_files_format_tag(tiny_model_path, tmp_path):
    """One table (vidcolor.models.families): the weight file's format tag picks the family, and the
    family declares what the model can do; an unknown tag is refused in one line."""
    from safetensors.torch import save_file

    from vidcolor.errors import ModelError
    from vidcolor.models.families import FAMILIES, family_for_format, file_format
    from vidcolor.models.registry import load_model

    assert {f.format for f in FAMILIES} == {
        "vidcolor-generator",
        "deoldify-generator",
        "ddcolor-generator",
        "vidcolor-generator-onnx",
    }
    assert family_for_format(file_format(tiny_model_path), tiny_model_path).name == "vidcolor"
    model = load_model(str(tiny_model_path))
    assert model.info.describes and not model.info.own_resize and not model.info.native_pictures
    assert model.describe(torch.rand(1, 1, 64, 64)).shape[1] > 0
    stranger = tmp_path / "stranger.safetensors"
    save_file({"w": torch.zeros(1)}, str(stranger), metadata={"format": "someone-elses-net"})
    with pytest.raises(ModelError, match="unknown model format 'someone-elses-net'"):
        load_model(str(stranger))
