"""ONNX export: the file, its metadata, its agreement with PyTorch, errors, and the CLI."""

from __future__ import annotations

import onnx
import pytest
import torch
from typer.testing import CliRunner

from vidcolor.backends import load_onnx_model
from vidcolor.cli import app
from vidcolor.errors import InputError, ModelError, OutputError
from vidcolor.export import export_onnx, parse_render_size
from vidcolor.models.registry import load_model

runner = CliRunner()


@pytest.fixture(scope="module")
def dynamic_onnx(tiny_model_path, tmp_path_factory):
    dst = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(load_model(str(tiny_model_path)), dst)


def test_dynamic_export_file_and_metadata(dynamic_onnx, tiny_model_path):
    assert dynamic_onnx.path.is_file() and dynamic_onnx.render_size == "dynamic"
    assert dynamic_onnx.max_ab_error < 1e-3
    assert [p.name for p in dynamic_onnx.path.parent.iterdir()] == ["model.onnx"]  # no partial file left
    proto = onnx.load(str(dynamic_onnx.path))
    onnx.checker.check_model(proto)
    meta = {m.key: m.value for m in proto.metadata_props}
    source = load_model(str(tiny_model_path)).info
    assert meta["name"] == "tiny-random" and meta["source_sha256"] == source.sha256 and meta["render_size"] == "dynamic"
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]


def test_exported_file_loads_as_a_color_model(dynamic_onnx, tiny_model_path):
    model = load_onnx_model(str(dynamic_onnx.path))
    assert model.info.name == "tiny-random" and model.info.sha256 != load_model(str(tiny_model_path)).info.sha256
    luma = torch.linspace(0, 1, 3 * 40 * 90).view(3, 1, 40, 90)
    want = load_model(str(tiny_model_path)).predict_chroma(luma, "bt709")
    got = model.predict_chroma(luma, "bt709")
    assert float((got - want).abs().max()) < 1e-4


def test_fixed_size_export_refuses_other_sizes(tiny_model_path, tmp_path):
    result = export_onnx(load_model(str(tiny_model_path)), tmp_path / "fixed.onnx", render_size=(64, 96))
    assert result.render_size == "64x96" and result.checked_size == (64, 96) and result.max_ab_error < 1e-3
    model = load_onnx_model(str(result.path))
    assert model.predict_chroma(torch.rand(2, 1, 64, 96)).shape == (2, 2, 64, 96)
    with pytest.raises(InputError, match="64x96"):
        model.predict_chroma(torch.rand(1, 1, 96, 64))


def test_output_errors(dynamic_onnx, tiny_model_path, tmp_path):
    model = load_model(str(tiny_model_path))
    with pytest.raises(OutputError, match="already exists"):
        export_onnx(model, dynamic_onnx.path)
    with pytest.raises(OutputError, match=".onnx"):
        export_onnx(model, tmp_path / "model.pt")
    with pytest.raises(OutputError, match="does not exist"):
        export_onnx(model, tmp_path / "missing" / "m.onnx")


def test_bad_files_are_model_errors(tmp_path):
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelError):
        load_onnx_model(str(damaged))
    foreign = tmp_path / "foreign.onnx"
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), str(foreign))
    with pytest.raises(ModelError, match="vidcolor"):
        load_onnx_model(str(foreign))
    with pytest.raises(ModelError, match="not found"):
        load_onnx_model(str(tmp_path / "nope.onnx"))


def test_non_generator_models_are_refused(tmp_path):
    from vidcolor.models.base import ModelInfo

    class Other:
        info = ModelInfo(name="other")

    with pytest.raises(ModelError, match="not a vidcolor generator"):
        export_onnx(Other(), tmp_path / "o.onnx")  # type: ignore[arg-type]


@pytest.mark.parametrize("text, want", [("192x352", (192, 352)), ("64X96", (64, 96)), ("dynamic", None), (None, None)])
def test_parse_render_size(text, want):
    assert parse_render_size(text) == want


@pytest.mark.parametrize("text", ["192", "axb", "0x64", "64x99999", "64x64x3"])
def test_parse_render_size_rejects(text):
    with pytest.raises(InputError):
        parse_render_size(text)


def test_cli(tiny_model_path, tmp_path):
    out = tmp_path / "cli.onnx"
    ok = runner.invoke(app, ["export", "onnx", "-m", str(tiny_model_path), "-o", str(out), "--render-size", "64x96"])
    assert ok.exit_code == 0, ok.output
    assert out.is_file() and "max |Δab|" in ok.output and "64x96" in ok.output
    for args, needle in (
        (["-o", str(out)], "already exists"),
        (["-o", str(tmp_path / "x.txt")], ".onnx"),
        (["-o", str(tmp_path / "y.onnx"), "--render-size", "big"], "HxW"),
    ):
        bad = runner.invoke(app, ["export", "onnx", "-m", str(tiny_model_path), *args])
        assert bad.exit_code == 2 and needle in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(
        app, ["export", "onnx", "-m", str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "z.onnx")]
    )
    assert missing.exit_code == 2 and "not found" in missing.output
    assert runner.invoke(app, ["export", "onnx", "--help"]).exit_code == 0


def test_run_with_an_exported_model(dynamic_onnx, color_clip, tmp_path):
    import json

    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    args = ["run", str(color_clip), str(out), "-m", str(dynamic_onnx.path), "-q", "-r", "4"]
    result = runner.invoke(app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["settings"]["backend"] == "onnx" and data["model"]["name"] == "tiny-random" and data["frames"] == 30
    bad = runner.invoke(app, [*args, "-y", "--backend", "bf16"])
    assert bad.exit_code == 2 and "ONNX Runtime" in bad.output
    with pytest.raises(ModelError, match="temperature"):
        load_model(str(dynamic_onnx.path), temperature=0.5)
