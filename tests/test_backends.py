"""Model backends: each one's output against float32 eager, auto's choice, errors, CLI wiring."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from vidcolor.backends import BACKENDS, TOLERANCE, OnnxRuntimeModel, TorchBackendModel, prepare_backend, resolve_backend
from vidcolor.cli import app
from vidcolor.colorizer import Colorizer
from vidcolor.errors import InputError
from vidcolor.models.base import ModelInfo
from vidcolor.models.registry import load_model
from vidcolor.settings import RenderConfig

CPU = torch.device("cpu")
runner = CliRunner()


@pytest.fixture(scope="module")
def luma() -> torch.Tensor:
    """Two smooth, different frames at a size that is NOT a multiple of 32 (padding path)."""
    h, w = 50, 70
    yy = torch.linspace(0, 1, h).view(h, 1)
    xx = torch.linspace(0, 1, w).view(1, w)
    a = 0.5 + 0.45 * torch.sin(7 * xx + 3 * yy)
    return torch.stack([a, 1 - a]).unsqueeze(1)


@pytest.fixture(scope="module")
def reference(tiny_model_path, luma) -> torch.Tensor:
    return load_model(str(tiny_model_path)).predict_chroma(luma)


@pytest.mark.parametrize("backend", ["eager", "channels_last", "onnx"])
def test_float32_backends_match_eager(tiny_model_path, luma, reference, backend):
    model, resolved = prepare_backend(load_model(str(tiny_model_path)), backend, CPU)
    assert resolved == backend
    got = model.predict_chroma(luma)
    assert got.shape == reference.shape == (2, 2, 50, 70)
    assert float((got - reference).abs().max()) < 1e-4  # float32 everywhere: rounding only


def test_bf16_backend_is_close_and_really_reduced(tiny_model_path, luma, reference):
    given = load_model(str(tiny_model_path))
    model, resolved = prepare_backend(given, "bf16", CPU)
    assert resolved == "bf16" and isinstance(model, TorchBackendModel) and model.dtype == torch.bfloat16
    first = next(p for p in given.generator.parameters() if p.dim() == 4)
    assert first.is_contiguous() and given.dtype == torch.float32  # the model given is left as it was
    seen = []
    conv = next(m for m in model.net.generator.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    got = model.predict_chroma(luma)
    handle.remove()
    assert seen == [torch.bfloat16]  # the network really ran in bfloat16
    assert got.dtype == torch.float32
    diff = (got - reference).abs() * 255
    assert float(diff.mean()) <= TOLERANCE.mean_code_values


def test_compile_backend_wraps_with_torch_compile(tiny_model_path):
    # Compiling takes minutes on 2 cores; its output is checked by benchmarks/bench_backends.py.
    model, resolved = prepare_backend(load_model(str(tiny_model_path)), "compile", CPU)
    assert resolved == "compile" and isinstance(model.net, torch._dynamo.eval_frame.OptimizedModule)


def test_auto_picks_onnx_on_cpu_then_respects_dtype(tiny_model_path):
    model = load_model(str(tiny_model_path))
    assert resolve_backend("auto", CPU, model) == "onnx"
    assert resolve_backend("auto", CPU, model, torch.bfloat16) == "channels_last"
    assert resolve_backend("auto", torch.device("cuda"), model) == "channels_last"


def test_unknown_and_impossible_backends_are_input_errors(tiny_model_path):
    model = load_model(str(tiny_model_path))
    with pytest.raises(InputError, match="unknown backend"):
        prepare_backend(model, "tensorrt", CPU)
    with pytest.raises(InputError, match="CUDA"):
        prepare_backend(model, "fp16", CPU)
    with pytest.raises(InputError, match="float32"):
        prepare_backend(model, "onnx", CPU, torch.bfloat16)
    assert set(BACKENDS) >= {"auto", "eager", "channels_last", "bf16", "compile", "onnx"}


class _OtherModel:
    """A ColorModel that is not our generator (as DeOldify's): only its `generator` is touched."""

    def __init__(self) -> None:
        self.info = ModelInfo(name="other")
        self.generator = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.dtype = torch.float32

    def to(self, device, dtype=None):
        if dtype is not None:
            self.dtype = dtype
        return self

    def predict_chroma(self, luma, matrix="bt601"):
        return self.generator(luma)


def test_other_models_get_eager_by_default_and_no_onnx():
    other = _OtherModel()
    assert prepare_backend(other, "auto", CPU) == (other, "eager")
    with pytest.raises(InputError, match="generators"):
        prepare_backend(other, "onnx", CPU)
    model, name = prepare_backend(other, "bf16", CPU)
    assert name == "bf16" and model.dtype == torch.bfloat16
    assert model.generator.weight.is_contiguous(memory_format=torch.channels_last)
    assert other.dtype == torch.float32 and other.generator.weight.is_contiguous()  # untouched


def test_colorizer_uses_the_backend(tiny_model_path):
    luma = torch.rand(3, 1, 120, 160)
    eager = Colorizer(load_model(str(tiny_model_path)), RenderConfig(render_factor=4, backend="eager"))
    onnx = Colorizer(load_model(str(tiny_model_path)), RenderConfig(render_factor=4, backend="auto"))
    assert eager.backend == "eager" and onnx.backend == "onnx" and isinstance(onnx.model, OnnxRuntimeModel)
    (small_a, cbcr_a), (small_b, cbcr_b) = eager.colorize(luma), onnx.colorize(luma)
    assert torch.equal(small_a, small_b)
    assert float((cbcr_a - cbcr_b).abs().max()) < 1e-4
    with pytest.raises(InputError, match="unknown backend"):
        Colorizer(load_model(str(tiny_model_path)), RenderConfig(backend="fast"))


def test_run_cli_backend_option(color_clip, tiny_model_path, tmp_path):
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    args = ["run", str(color_clip), str(out), "-m", str(tiny_model_path), "-q", "--render-factor", "4"]
    result = runner.invoke(app, [*args, "--backend", "channels_last", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["settings"]["backend"] == "channels_last"
    bad = runner.invoke(app, [*args, "-y", "--backend", "warp-drive"])
    assert bad.exit_code == 2 and "unknown backend" in bad.output and "Traceback" not in bad.output


def test_image_cli_backend_option(tiny_model_path, tmp_path):
    import numpy as np
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) % 251).astype(np.uint8), "L").save(src)
    result = runner.invoke(
        app,
        [
            "image",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "-m",
            str(tiny_model_path),
            "-q",
            "-r",
            "4",
            "--backend",
            "onnx",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "in.png").is_file()


def test_onnx_keeps_the_confidence_shrink(tiny_model_path, luma):
    """confidence_gamma is part of the exported graph; a changed decoding gets a new export."""
    model = load_model(str(tiny_model_path))
    bias = torch.zeros(model.generator.config.bins)
    bias[40] = 3.0  # some pixels confident, others not: the shrink varies over the picture
    model.generator.set_decoding(temperature=0.5, bin_bias=tuple(bias.tolist()))
    plain = prepare_backend(model, "onnx", CPU)[0].predict_chroma(luma)
    model.generator.set_decoding(confidence_gamma=2.0)
    eager = model.predict_chroma(luma)
    onnx = prepare_backend(model, "onnx", CPU)[0].predict_chroma(luma)
    assert float((eager - onnx).abs().max()) < 1e-3
    assert float((plain - onnx).abs().max()) > 1e-3  # not the cached graph of the old decoding
    # The window too (this random model's confidence is about 0.0226 everywhere: about half kept)
    model.generator.set_decoding(confidence_gamma=1.0, confidence_window=(0.02, 0.025))
    eager_window = model.predict_chroma(luma)
    onnx_window = prepare_backend(model, "onnx", CPU)[0].predict_chroma(luma)
    assert float((eager_window - onnx_window).abs().max()) < 1e-3
    assert float((eager_window - onnx).abs().max()) > 1e-3
