"""Shared fixtures: small generated media (PyAV) and a tiny randomly initialised model.

Reusable by every test module:
- ``make_clip(path, **options)``: write a moving coloured pattern (optionally with AAC sine
  audio, an SRT subtitle stream, VFR timestamps, rotation, colour tags) and return the path.
- ``color_clip``: a 30-frame 25 fps 160x120 H.264 mp4 with stereo AAC audio, BT.709 tagged.
- ``tiny_model_path``: a random ``Generator()`` saved as safetensors (``load_model(str(path))``).
- ``tiny_model``: that file loaded as a ColorModel.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import make_clip


def pytest_configure(config: pytest.Config) -> None:
    # Stored ONNX graphs (vidcolor.models.onnx_cache) go to a folder of this test session's own,
    # inherited by the CLI subprocesses: tests neither read nor fill the user's cache.
    os.environ["VIDCOLOR_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="vidcolor-test-cache-")
    # PyTorch's compiler caches (torch.compile, and training's first optimiser step) go there too,
    # not to /tmp/torchinductor_<user>, which nothing would remove.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache, "torchinductor")


def pytest_unconfigure(config: pytest.Config) -> None:
    # Tests clean up after themselves: the session's cache folder goes with it (pytest's own
    # tmp_path folders go too: tmp_path_retention_policy in pyproject.toml keeps only failures').
    cache = os.environ.pop("VIDCOLOR_CACHE_DIR", "")
    if os.path.basename(cache).startswith("vidcolor-test-cache-"):
        shutil.rmtree(cache, ignore_errors=True)
    # pytest's per-user folder of tmp_path folders, once they are gone (kept when a failure's are).
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(tempfile.gettempdir(), f"pytest-of-{getpass.getuser()}"))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def color_clip(media_dir: Path) -> Path:
    """30 frames, 25 fps, 160x120 H.264 yuv420p BT.709 + stereo AAC sine, title metadata."""
    return make_clip(media_dir / "clip.mp4")


@pytest.fixture(scope="session", name="make_clip")
def make_clip_fixture():
    return make_clip


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from vidcolor.models.generator import Generator
    from vidcolor.models.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(Generator(), path, {"name": "tiny-random", "version": "0"})
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    from vidcolor.models.registry import load_model

    return load_model(str(tiny_model_path))


@pytest.fixture(scope="session")
def tiny_hint_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random generator that takes colour hints. Its hint stem stays zero (as a fresh one starts),
    so a hint acts only through the stride-4 skip: locally, which lets tests check where it lands."""
    import torch

    from vidcolor.models.generator import Generator, GeneratorConfig
    from vidcolor.models.weights import save_generator

    torch.manual_seed(1)
    gen = Generator(GeneratorConfig(hints=True))
    with torch.no_grad():
        gen.up4.fuse[0].weight[:, -3:] *= 40.0  # make the hint input count for a random net
    path = tmp_path_factory.mktemp("model") / "tiny-hints.safetensors"
    save_generator(gen, path, {"name": "tiny-hints", "version": "0"})
    return path
