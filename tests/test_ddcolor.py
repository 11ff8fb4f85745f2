"""DDColor's published files in vidcolor (issue 37): the strict loader, its one-line refusals, the
import command, the render factor, and films with the temporal stage, keyframes and references.

Weights: vidcolor.models.ddcolor.seeded (random, seeded, in DDColor's published layout); DDColor's
real files cannot be downloaded here. The match with DDColor's OWN output is
tests/test_ddcolor_reference.py.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.helpers import decoded, packets
from vidcolor.cli import app
from vidcolor.colorizer import Colorizer
from vidcolor.errors import ModelError
from vidcolor.models import ddcolor
from vidcolor.models.ddcolor.seeded import published_layout, seeded_state
from vidcolor.models.registry import load_model
from vidcolor.models.weights import read_metadata, sha256_file
from vidcolor.settings import RenderConfig

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO / "samples" / "photos" / "chelsea.png"  # samples/README.md: scikit-image's chelsea, grey
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    return seeded_state("tiny")


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory, tiny_state) -> Path:
    """DDColor tiny with seeded weights, saved as DDColor's trainer saves: {'params': state}."""
    path = tmp_path_factory.mktemp("ddcolor") / "ddcolor_paper_tiny.pth"
    torch.save(published_layout(tiny_state), path)
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    return lines[0]


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def film_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


# --------------------------------------------------------------------------- the layout


def test_the_network_has_ddcolors_published_layout() -> None:
    """Key for key what DDColor's own modules hold (checked against DDColor's code: 440 and 602
    keys, same names and shapes, pipelines/ddcolor_reference.py); a few landmarks here."""
    tiny, large = ddcolor.expected_shapes("tiny"), ddcolor.expected_shapes("large")
    assert (len(tiny), len(large)) == (440, 602)
    assert tiny["encoder.arch.downsample_layers.0.0.weight"] == (96, 3, 4, 4)
    assert large["encoder.arch.stages.2.26.gamma"] == (768,) and "encoder.arch.stages.2.9.gamma" not in tiny
    assert tiny["decoder.layers.0.shuf.conv.0.weight_orig"] == (2048, 768, 1, 1)
    assert tiny["decoder.last_shuf.conv.0.weight_orig"] == (4096, 256, 1, 1)
    assert tiny["decoder.color_decoder.transformer_cross_attention_layers.8.multihead_attn.in_proj_weight"] == (
        768,
        256,
    )
    assert tiny["decoder.color_decoder.query_feat.weight"] == (100, 256)
    assert tiny["refine_net.0.0.weight_orig"] == (2, 103, 1, 1)
    assert ddcolor.parameter_count(seeded_state("tiny")) > 50_000_000


def test_the_size_is_read_from_the_file(tiny_pth: Path) -> None:
    model = load_model(f"ddcolor:{tiny_pth}")
    assert model.info.extra["size"] == "tiny" and model.info.name == "ddcolor-paper-tiny"
    assert not model.info.takes_hints and not model.info.keep_aspect and model.info.native_pictures


# --------------------------------------------------------------------------- refusals


class Exploit:
    def __reduce__(self):  # runs os.system on a full (unsafe) unpickle
        import os

        return (os.system, (f"touch {Path(__file__).parent / 'pwned-ddcolor'}",))


def _bad_files(tmp_path: Path, tiny_state: dict[str, torch.Tensor]) -> dict[str, tuple[Path, str]]:
    files: dict[str, tuple[Path, str]] = {}
    small = tmp_path / "small.pth"
    torch.save({"params": {"w": torch.zeros(4096)}}, small)
    truncated = tmp_path / "ddcolor_paper.pth"
    truncated.write_bytes(small.read_bytes()[: small.stat().st_size // 2])
    files["truncated"] = (truncated, "not a PyTorch checkpoint")
    text = tmp_path / "ddcolor_modelscope.pth"
    text.write_text("error 404: not found")
    files["text"] = (text, "not a PyTorch checkpoint")
    bomb = tmp_path / "ddcolor_artistic.pth"
    with open(bomb, "wb") as f:
        pickle.dump({"params": Exploit()}, f)
    files["pickle bomb"] = (bomb, "not a PyTorch checkpoint")
    renamed = tmp_path / "renamed.pth"  # another network's weights under a DDColor name
    torch.save({"params": {"layers.0.0.weight": torch.zeros(64, 3, 7, 7)}}, renamed)
    files["another network"] = (renamed, "not a DDColor network")
    v2 = tmp_path / "v2.pth"  # vidcolor's safetensors renamed to .pth
    v2.write_bytes((REPO / "vidcolor" / "weights" / "vidcolor-lite0-cls-v2.safetensors").read_bytes())
    files["safetensors renamed"] = (v2, "not a PyTorch checkpoint")
    missing = dict(tiny_state)
    del missing["decoder.color_decoder.level_embed.weight"]
    missing["refine_net.0.0.bias"] = torch.zeros(3)
    broken = tmp_path / "broken.pth"
    torch.save({"params": missing}, broken)
    files["missing and misshapen keys"] = (
        broken,
        r"1 missing \(decoder.color_decoder.level_embed.weight\); 1 of wrong shape \(refine_net.0.0.bias",
    )
    return files


def test_bad_files_are_one_line_errors_and_run_no_code(tmp_path: Path, tiny_state) -> None:
    for what, (path, message) in _bad_files(tmp_path, tiny_state).items():
        result = runner.invoke(
            app, ["image", str(PHOTO), "-o", str(tmp_path / "out"), "--model", f"ddcolor:{path}", "-r", "4"]
        )
        line = one_line_error(result)
        assert re.search(message, line), (what, line)
        imported = runner.invoke(app, ["models", "import-ddcolor", str(path), "-o", str(tmp_path / "x.safetensors")])
        assert re.search(message, one_line_error(imported)), what
    assert not (Path(__file__).parent / "pwned-ddcolor").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "x.safetensors").exists()


def test_a_state_with_nan_or_extra_keys_is_refused(tiny_state) -> None:
    extra = dict(tiny_state, **{"encoder.arch.head.weight": torch.zeros(4, 768)})
    with pytest.raises(ModelError, match=r"1 unexpected \(encoder.arch.head.weight\)"):
        ddcolor.fit_state(extra, "f.pth")
    poisoned = dict(tiny_state)
    poisoned["decoder.color_decoder.decoder_norm.weight"] = torch.full((256,), float("nan"))
    with pytest.raises(ModelError, match="NaN"):
        ddcolor.fit_state(poisoned, "f.pth")
    # The ImageNet constants may be absent (filled in); nothing else may.
    without = {k: v for k, v in tiny_state.items() if k not in ("mean", "std")}
    size, fitted = ddcolor.fit_state(without, "f.pth")
    assert size == "tiny" and torch.equal(fitted["std"], tiny_state["std"])


def test_prefix_without_a_path_and_other_prefixes_are_refused(tiny_pth: Path) -> None:
    with pytest.raises(ModelError, match="write ddcolor:PATH"):
        load_model("ddcolor")
    with pytest.raises(ModelError, match="write ddcolor:PATH"):
        load_model(f"ddcolor-large:{tiny_pth}")


# --------------------------------------------------------------------------- import and use


def test_import_checks_converts_and_loads_the_same(tmp_path: Path, tiny_pth: Path) -> None:
    dest = tmp_path / "ddcolor-tiny.safetensors"
    result = runner.invoke(app, ["models", "import-ddcolor", str(tiny_pth), "-o", str(dest)])
    assert result.exit_code == 0, result.output
    assert f"sha256        {sha256_file(dest)}" in result.output
    assert "DDColor, ConvNeXt-T encoder" in result.output and "Apache-2.0" in result.output
    meta = read_metadata(dest)
    assert meta["format"] == "ddcolor-generator" and meta["source_sha256"] == sha256_file(tiny_pth)
    assert meta["encoder_size"] == "tiny" and meta["name"] == "ddcolor-paper-tiny"
    again = runner.invoke(app, ["models", "import-ddcolor", str(tiny_pth), "-o", str(dest)])
    assert "exists" in one_line_error(again)
    info = runner.invoke(app, ["models", "info", str(dest)])
    assert info.exit_code == 0 and "ddcolor-generator" in info.output
    published = runner.invoke(app, ["models", "info", str(tiny_pth)])
    assert published.exit_code == 0 and "DDColor tiny" in published.output and "55,006,640" in published.output
    # The converted file gives the very same picture as the published file.
    outs = []
    for spec in (f"ddcolor:{tiny_pth}", str(dest)):
        out = tmp_path / spec.replace("/", "_").replace(":", "_")
        assert runner.invoke(app, ["image", str(PHOTO), "-o", str(out), "--model", spec, "-r", "8"]).exit_code == 0
        outs.append(rgb(out / PHOTO.name))
    assert np.array_equal(outs[0], outs[1])
    assert float(np.abs(outs[0].astype(int) - outs[0].mean(2, keepdims=True)).mean()) > 2  # coloured


def test_render_factor_sets_the_square_input(tiny_pth: Path) -> None:
    model = load_model(f"ddcolor:{tiny_pth}")
    luma = torch.rand(1, 1, 300, 451)
    assert Colorizer(model, RenderConfig(), video=False).prepare(luma).shape[-2:] == (512, 512)  # DDColor's default
    assert Colorizer(model, RenderConfig(render_factor=16)).prepare(luma).shape[-2:] == (256, 256)
    assert Colorizer(model, RenderConfig(render_factor=8)).prepare(luma).shape[-2:] == (128, 128)


def test_stills_keep_the_pictures_luma_with_vidcolors_composition(tmp_path: Path, tiny_pth: Path) -> None:
    """--postprocess vidcolor: the network's chroma on the picture's own luma (DDColor's own ending
    keeps L in Lab instead, which moves the luma by rounding)."""
    out = tmp_path / "o"
    args = ["image", str(PHOTO), "-o", str(out), "--model", f"ddcolor:{tiny_pth}", "-r", "8"]
    assert runner.invoke(app, [*args, "--postprocess", "vidcolor"]).exit_code == 0
    picture = rgb(out / PHOTO.name).astype(np.float64)
    luma = picture @ np.array([0.299, 0.587, 0.114])
    grey = np.asarray(Image.open(PHOTO).convert("L"), dtype=np.float64)
    assert np.abs(luma - grey).mean() < 0.6


# --------------------------------------------------------------------------- films


def test_a_film_with_ddcolor_every_frame_keyframes_and_a_reference(tmp_path: Path, tiny_pth: Path, color_clip):
    """The sample-sized film through `vidcolor run`: every frame at its time, audio copied, the
    temporal stage on; keyframe mode colours fewer frames; a reference frame's colour is kept."""
    base = ["--model", f"ddcolor:{tiny_pth}", "-r", "8", "--quiet"]
    every = tmp_path / "every.mp4"
    result = runner.invoke(app, ["run", str(color_clip), str(every), *base, "--report", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    frames, pts, _ = decoded(every)
    src_frames, src_pts, _ = decoded(color_clip)
    assert len(frames) == len(src_frames) == 30 and pts == src_pts
    frames, src_frames = film_rgb(every), film_rgb(color_clip)
    assert packets(every, "audio") == packets(color_clip, "audio")
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["model"]["name"] == "ddcolor-paper-tiny"

    keyed = tmp_path / "keyed.mp4"
    result = runner.invoke(
        app,
        [
            "run",
            str(color_clip),
            str(keyed),
            *base,
            "--keyframe-interval",
            "auto",
            "--report",
            str(tmp_path / "k.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(decoded(keyed)[0]) == 30
    k = json.loads((tmp_path / "k.json").read_text())
    assert k["frames"] == 30 and k["settings"]["temporal"]["keyframe_interval"] == "auto"
    assert k["settings"]["render_size"] == [128, 128]

    refs = tmp_path / "refs"
    refs.mkdir()
    Image.fromarray(src_frames[0]).save(refs / "000000.png")
    with_ref = tmp_path / "ref.mp4"
    result = runner.invoke(app, ["run", str(color_clip), str(with_ref), *base, "--reference", str(refs)])
    assert result.exit_code == 0, result.output

    def chroma_error(a: np.ndarray, b: np.ndarray) -> float:
        ca = a.astype(np.float32) - a.astype(np.float32).mean(2, keepdims=True)
        cb = b.astype(np.float32) - b.astype(np.float32).mean(2, keepdims=True)
        return float(np.abs(ca - cb).mean())

    assert chroma_error(film_rgb(with_ref)[0], src_frames[0]) < 0.5 * chroma_error(frames[0], src_frames[0])


def test_the_studio_opens_a_film_with_ddcolor(tmp_path: Path, tiny_pth: Path, make_clip) -> None:
    """The studio's automatic view and its reference round trip work with DDColor; hints are refused
    in one line (DDColor takes none)."""
    import io
    import time

    from starlette.testclient import TestClient

    from vidcolor.studio.project import Studio, StudioSettings
    from vidcolor.studio.server import create_app

    film = make_clip(tmp_path / "film.mp4", frames=8, width=96, height=64, audio=False)
    studio = Studio([film], load_model(f"ddcolor:{tiny_pth}"), None, StudioSettings(render_factor=8))
    try:
        end = time.monotonic() + 60
        while not studio.source.snapshot()["done"]:
            assert time.monotonic() < end
            time.sleep(0.05)
        client = TestClient(create_app(studio, "t", {"testserver"}))
        auth = {"X-Vidcolor-Token": "t"}
        assert client.get("/api/project", headers=auth).json()["takes_hints"] is False
        auto = client.get("/api/frame/3?view=auto", headers=auth)
        assert auto.status_code == 200
        picture = np.asarray(Image.open(io.BytesIO(auto.content)).convert("RGB")).astype(int)
        assert picture.shape == (64, 96, 3) and np.abs(picture - picture.mean(2, keepdims=True)).mean() > 1
        stroke = {"colour": "#2050e0", "radius": 3, "points": [[10, 10], [20, 12]]}
        refused = client.put("/api/hints/3", headers=auth, json=[stroke])
        assert refused.status_code == 400 and "hints" in refused.text
    finally:
        studio.close()


def test_onnx_runtime_runs_ddcolors_network_as_pytorch_does(tiny_pth: Path) -> None:
    """--backend onnx: the network exported for the run's square and run by ONNX Runtime; DDColor's
    pre- and post-processing unchanged, the chroma as PyTorch's."""
    pytest.importorskip("onnxruntime")
    model = load_model(f"ddcolor:{tiny_pth}")
    luma = torch.rand(2, 1, 48, 64)
    outs = {}
    for backend in ("eager", "onnx"):
        colorizer = Colorizer(model, RenderConfig(render_factor=4, backend=backend))
        assert colorizer.backend == backend
        outs[backend] = colorizer.predict(colorizer.prepare(luma))
    assert outs["onnx"].shape == (2, 2, 64, 64)
    assert (outs["onnx"] - outs["eager"]).abs().max() < 1e-3
    assert isinstance(model.generator, torch.nn.Module)  # the model given is left as it was


def test_onnx_refuses_an_export_too_big_for_the_machine(monkeypatch) -> None:
    """Exporting DDColor large for a 512 square was killed at 20 GB here: such an export is
    refused in one line before it starts."""
    pytest.importorskip("onnxruntime")
    from vidcolor.errors import InputError
    from vidcolor.models import onnx_network

    net = torch.nn.Conv2d(3, 2, 1)
    monkeypatch.setattr(onnx_network, "MAX_EXPORT_WORK", 8 * 64 * 64 - 1)  # its 8 parameters, one pixel short
    with pytest.raises(InputError, match="needs more memory"):
        onnx_network.OnnxNetwork(net).session((3, 64, 64))


def test_batch_and_eval_take_ddcolor(tmp_path: Path, tiny_pth: Path) -> None:
    """`batch` (its job fingerprint names the file by its sha256) and `eval` accept ddcolor:PATH."""
    from vidcolor.jobs.settings import model_fingerprint

    src = tmp_path / "archive"
    src.mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):  # samples/README.md: grey public-domain photos
        (src / name).write_bytes((REPO / "samples" / "photos" / name).read_bytes())
    spec = f"ddcolor:{tiny_pth}"
    assert model_fingerprint(spec) == f"ddcolor:{sha256_file(tiny_pth)}"
    result = runner.invoke(app, ["batch", "run", str(src), str(tmp_path / "out"), "--model", spec, "-r", "4"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "coffee.jpg",
        "rocket.jpg",
    ]
    scored = runner.invoke(app, ["eval", str(src), "--model", spec, "-r", "4"])
    assert scored.exit_code == 0 and "coffee.jpg" in scored.output
