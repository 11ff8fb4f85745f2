"""The fast paths of issue 14, each against the plain computation it replaces: the annealed mean
without a channel soft-max, the chroma planes through OpenCV, the model one batch ahead on its
own thread, the ONNX graphs stored on disk, and the scoped torch thread count."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import vidcolor.backends as backends
from vidcolor.compose import upsample_chroma
from vidcolor.models import onnx_cache
from vidcolor.models.ab_bins import annealed_mean, confidence, in_gamut_bin_centers
from vidcolor.models.base import ColorModelBase
from vidcolor.models.registry import load_model
from vidcolor.settings import RunSettings
from vidcolor.video.compose import chroma_planes, chroma_planes_on_device, quantise_chroma
from vidcolor.video.frames import FrameBatch
from vidcolor.video.model_runner import ModelRunner, torch_threads

CPU = torch.device("cpu")


@pytest.mark.parametrize("temperature", [0.38, 1.0, 0.05])
def test_annealed_mean_and_confidence_equal_the_softmax_forms(temperature):
    centers = in_gamut_bin_centers()
    torch.manual_seed(1)
    logits = torch.randn(2, centers.shape[0], 9, 11) * 6
    expected = torch.einsum("bqhw,qc->bchw", torch.softmax(logits / temperature, dim=1), centers)
    torch.testing.assert_close(annealed_mean(logits, centers, temperature), expected, atol=1e-3, rtol=1e-5)
    logp = torch.log_softmax(logits, dim=1)
    entropy = -(logp.exp() * logp).sum(dim=1, keepdim=True)
    torch.testing.assert_close(
        confidence(logits), (1 - entropy / math.log(logits.shape[1])).clamp(0, 1), atol=1e-5, rtol=0
    )


def test_bin_centres_are_the_sorted_unique_cells():
    centers = in_gamut_bin_centers()
    assert centers.shape == (261, 2)
    keys = [tuple(c) for c in centers.tolist()]
    assert keys == sorted(set(keys))  # unique, sorted by (a, b) as torch.unique(dim=0) gives them


@pytest.mark.parametrize(
    ("bits", "full_range", "size"), [(8, False, (61, 97)), (8, True, (40, 40)), (10, False, (61, 97))]
)
def test_chroma_planes_match_upsample_then_quantise(bits, full_range, size):
    torch.manual_seed(2)
    chroma = torch.randn(3, 2, 20, 30) * 0.3  # beyond the legal range too: clipped the same way
    expected = quantise_chroma(upsample_chroma(chroma, size), bits, full_range).astype(np.int64)
    got = chroma_planes(chroma, size, bits, full_range)
    assert got.dtype == (np.uint8 if bits == 8 else np.uint16) and got.shape == (3, 2, *size)
    diff = np.abs(got.astype(np.int64) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # rounding of float ties only
    on_device = chroma_planes_on_device(chroma, size, bits, full_range)  # the GPU route, run here on the CPU
    assert on_device.dtype == got.dtype and np.array_equal(on_device.astype(np.int64), expected)


def frames_of(luma: torch.Tensor, first: int = 0) -> FrameBatch:
    n = len(luma)
    return FrameBatch(first, tuple(range(first, first + n)), Fraction(1, 25), np.zeros((n, 2, 2), np.uint8), luma)


def test_model_runner_colours_exactly_the_key_frames_on_its_thread():
    calls: list[tuple[str, int]] = []

    def predict(luma, hints=None):
        calls.append((threading.current_thread().name, len(luma)))
        return luma.expand(-1, 2, -1, -1) * 2

    luma = torch.rand(4, 1, 8, 8)
    with ModelRunner(predict) as runner:
        done = runner.submit(frames_of(luma).with_keys([1, 3])).result()
        none = runner.submit(frames_of(luma, 4).with_keys([])).result()
    assert len(calls) == 1 and calls[0][0].startswith("vidcolor-model") and calls[0][1] == 2
    assert done.predicted is not None and torch.equal(done.predicted, luma[[1, 3]].expand(-1, 2, -1, -1) * 2)
    assert none.predicted is not None and none.predicted.shape == (0, 2, 8, 8)
    assert runner.frames == 2 and runner.seconds >= 0


def test_model_runner_error_reaches_the_caller():
    def predict(luma, hints=None):
        raise RuntimeError("model failed")

    with ModelRunner(predict) as runner:
        future = runner.submit(frames_of(torch.zeros(1, 1, 4, 4)).with_keys([0]))
        with pytest.raises(RuntimeError, match="model failed"):
            future.result()


def test_torch_threads_is_scoped():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError), torch_threads(1):
        raise ValueError
    assert torch.get_num_threads() == before


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def test_onnx_graph_is_stored_and_reused_across_runs(tiny_model_path, cache, monkeypatch):
    luma = torch.rand(1, 1, 64, 64)
    first, _ = backends.prepare_backend(load_model(str(tiny_model_path)), "onnx", CPU)
    stored = list(cache.glob("*.onnx"))
    assert len(stored) == 1 and not list(cache.glob("*.tmp"))

    def no_export(*args, **kwargs):
        raise AssertionError("the stored graph should have been used")

    monkeypatch.setattr(backends, "onnx_bytes", no_export)
    second, _ = backends.prepare_backend(load_model(str(tiny_model_path)), "onnx", CPU)
    torch.testing.assert_close(second.predict_chroma(luma), first.predict_chroma(luma))


def test_onnx_cache_key_follows_the_weights_and_decoding(tiny_model_path):
    model = load_model(str(tiny_model_path))
    key = onnx_cache.graph_key(model.generator, model.temperature, 17)
    assert onnx_cache.graph_key(model.generator, 0.9, 17) != key
    with torch.no_grad():
        next(model.generator.parameters()).add_(1e-3)
    assert onnx_cache.graph_key(model.generator, model.temperature, 17) != key


def test_damaged_stored_graph_is_rebuilt(tiny_model_path, cache):
    backends.prepare_backend(load_model(str(tiny_model_path)), "onnx", CPU)
    (path,) = cache.glob("*.onnx")
    good = path.read_bytes()
    path.write_bytes(b"not an onnx graph")
    model, _ = backends.prepare_backend(load_model(str(tiny_model_path)), "onnx", CPU)
    assert model.predict_chroma(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    assert path.read_bytes() == good


def test_unwritable_cache_only_costs_time(tiny_model_path, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("VIDCOLOR_CACHE_DIR", str(blocker))
    model, resolved = backends.prepare_backend(load_model(str(tiny_model_path)), "onnx", CPU)
    assert resolved == "onnx" and model.predict_chroma(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)


class _FailingModel(ColorModelBase):
    """A ColorModel whose third batch fails: the error must reach the caller through the model
    thread, and leave nothing on disk."""

    def __init__(self, base) -> None:
        self.base, self.info, self.calls = base, replace(base.info, describes=False), 0

    def to(self, device, dtype=None):
        return self

    def predict_chroma(self, luma, matrix="bt601"):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("the model broke on batch 3")
        return self.base.predict_chroma(luma, matrix)


def test_a_model_error_on_its_thread_ends_the_run_cleanly(color_clip, tiny_model, tmp_path):
    from vidcolor.settings import RenderConfig
    from vidcolor.video.run import colorize_video

    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="batch 3"):
        colorize_video(
            color_clip, dst, _FailingModel(tiny_model), RunSettings(render=RenderConfig(batch_size=4, backend="eager"))
        )
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
