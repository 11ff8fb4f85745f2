"""Model backends: how a ColorModel's network runs on its device (``--backend``).

- ``eager``: PyTorch as the model was written (NCHW, float32 unless ``--dtype`` says otherwise).
- ``channels_last``: PyTorch with NHWC weights and activations (oneDNN's and cuDNN's fast layout).
- ``bf16`` / ``fp16``: ``channels_last`` under autocast to bfloat16 / float16 (the annealed mean
  and the colour conversion stay in float32).
- ``compile``: ``torch.compile`` of the network (inductor; needs a C++ compiler on the CPU; the first
  batch of each size pays the compilation).
- ``onnx``: ONNX Runtime (CPU) on the network's ONNX graph (vidcolor.models.onnx_graph), built once
  and kept on disk (vidcolor.models.onnx_cache); a file
  written by ``vidcolor export onnx`` loads with ``load_onnx_model``. DDColor's network runs the
  same way (vidcolor.models.onnx_network), its pre- and post-processing unchanged.
- ``auto``: the fastest backend measured on the device whose output matches float32 within
  ``TOLERANCE`` (benchmarks/bench_backends.py; figures in benchmarks/RESULTS.md).

Every backend is wrapped back into a ColorModel, so the pipeline does not know which one runs;
the model a backend is given is never changed (layouts and compilation apply to copies).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from vidcolor.color import ab_to_chroma, luma_to_lightness
from vidcolor.errors import InputError, ModelError
from vidcolor.models.base import ColorModel, ColorModelBase, GeneratorModel, LightnessToAb, ModelInfo, precision
from vidcolor.models.onnx_cache import forget_graph, graph_key, read_graph, write_graph
from vidcolor.models.onnx_graph import (
    OPSET,
    OnnxRuntimeModel,
    load_onnx_model,
    missing_onnx_package,
    onnx_bytes,
    require_onnx,
)

__all__ = [
    "BACKENDS",
    "TOLERANCE",
    "OnnxRuntimeModel",
    "TorchBackendModel",
    "load_onnx_model",
    "prepare_backend",
    "resolve_backend",
]

BACKENDS = ("auto", "eager", "channels_last", "bf16", "fp16", "compile", "onnx")
REDUCED = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Tolerance:
    """How close a backend's chroma must stay to float32 eager to be chosen by ``auto``.

    In 8-bit code values of Cb/Cr (1 = 1/255 of the full chroma range): the mean error and its
    99.9th percentile over all pixels of a batch of real frames; plus the PSNR of the composed
    RGB frame (original luma + chroma) against the float32 one.
    """

    mean_code_values: float = 0.25
    p999_code_values: float = 1.0
    min_psnr_db: float = 50.0


TOLERANCE = Tolerance()

# What ``auto`` picks, from bench_backends.py on the project's 2-core AVX-512 CPU (RESULTS.md):
# ONNX Runtime was fastest there and matches float32 to ~1e-5; without onnxruntime,
# channels_last beat eager. CUDA could not be measured here: channels_last float32 is the safe
# choice (fp16/bf16 stay opt-in until measured against TOLERANCE on a GPU).
AUTO_ORDER = {"cpu": ("onnx", "channels_last"), "cuda": ("channels_last",)}


def onnxruntime_available() -> bool:
    return missing_onnx_package() is None


def resolve_backend(name: str, device: torch.device, model: ColorModel, dtype: torch.dtype = torch.float32) -> str:
    """``--backend`` value -> the concrete backend that will run (``auto`` resolved)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}: {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if not isinstance(model, GeneratorModel):
        return "eager"  # the measurements behind AUTO_ORDER are of our generator only
    if dtype != torch.float32:
        return "channels_last"  # an explicit --dtype is honoured through autocast
    for candidate in AUTO_ORDER.get(device.type, ()):
        if candidate == "onnx" and not onnxruntime_available():
            continue
        return candidate
    return "eager"


def prepare_backend(
    model: ColorModel, name: str, device: torch.device, dtype: torch.dtype = torch.float32, threads: int | None = None
) -> tuple[ColorModel, str]:
    """Wrap ``model`` (already on ``device``) for backend ``name``; returns (model, resolved name).
    ``threads``: ONNX Runtime's intra-op threads (None: torch's thread count)."""
    if isinstance(model, OnnxRuntimeModel):  # an exported file: ONNX Runtime is its only backend
        if name not in ("auto", "eager", "onnx"):
            raise InputError(f"an ONNX model file runs on ONNX Runtime; --backend {name} needs a .safetensors model")
        return model.to(device, dtype).with_threads(threads), "onnx"
    backend = resolve_backend(name, device, model, dtype)
    if backend in REDUCED and dtype != torch.float32 and dtype != REDUCED[backend]:
        raise InputError(f"--backend {backend} runs {REDUCED[backend]}; it cannot be combined with --dtype {dtype}")
    if backend == "fp16" and device.type == "cpu":
        raise InputError("--backend fp16 is for CUDA devices; on the CPU use bf16")
    if backend == "onnx":
        if dtype != torch.float32:
            raise InputError("--backend onnx runs float32; leave --dtype at float32")
        if device.type != "cpu":
            raise InputError("--backend onnx runs on the CPU (ONNX Runtime's CPU provider); use --device cpu")
        if isinstance(model, GeneratorModel):
            return _onnx_model(model, threads), backend
        if model.info.onnx_network:
            return _onnx_network(model, threads), backend
        raise InputError(f"--backend onnx supports vidcolor generators and DDColor, not {model.info.name!r}")
    if backend == "eager":
        return model, backend
    if isinstance(model, GeneratorModel):
        return TorchBackendModel(model, backend, REDUCED.get(backend, dtype)), backend
    return _generic(model, backend, device), backend


def _onnx_model(model: GeneratorModel, threads: int | None) -> OnnxRuntimeModel:
    """The model's dynamic-size ONNX graph in an ONNX Runtime session. The export takes ~1.5 s,
    so graphs are kept on disk between runs (vidcolor.models.onnx_cache), keyed by the weights
    themselves and the settings: a batch job's many files export once."""
    require_onnx()
    key = graph_key(model.generator, model.temperature, OPSET)
    graph = read_graph(key)
    if graph is not None:
        try:
            return OnnxRuntimeModel(graph, model.info, multiple=32, threads=threads)
        except ModelError:
            forget_graph(key)  # a damaged file on disk: build the graph again
    graph = onnx_bytes(model, None)
    write_graph(key, graph)
    return OnnxRuntimeModel(graph, model.info, multiple=32, threads=threads)


def _onnx_network(model: ColorModel, threads: int | None) -> ColorModel:
    """A copy of ``model`` whose network runs on ONNX Runtime (its own pre- and post-processing
    unchanged); the model given is left as it was."""
    from vidcolor.models.onnx_network import OnnxNetwork

    runner = copy.copy(model)
    runner.generator = OnnxNetwork(model.generator, threads)  # type: ignore[attr-defined]
    return runner


def _generic(model: ColorModel, backend: str, device: torch.device) -> ColorModel:
    """Other ColorModels (DeOldify's): layout, precision and compilation applied to a copy of
    their ``generator`` module where they have one (the model given is left as it was); they keep
    their own pre- and post-processing."""
    net = getattr(model, "generator", None)
    if not isinstance(net, torch.nn.Module):
        raise InputError(f"--backend {backend} is not available for model {model.info.name!r}; use eager")
    runner = copy.copy(model)
    net = copy.deepcopy(net)
    if backend in ("channels_last", "bf16", "fp16"):
        net = net.to(memory_format=torch.channels_last)
    runner.generator = torch.compile(net) if backend == "compile" else net  # type: ignore[attr-defined]
    if backend in REDUCED:
        runner.to(device, REDUCED[backend])
    return runner


class TorchBackendModel(ColorModelBase):
    """A GeneratorModel run with a memory layout, an autocast dtype and optionally torch.compile."""

    def __init__(self, base: GeneratorModel, backend: str, dtype: torch.dtype = torch.float32) -> None:
        self.base = base
        self.info: ModelInfo = base.info
        self.backend = backend
        self.dtype = dtype
        self.channels_last = backend != "eager"
        # The network in the backend's layout is a copy: the model given is left as it was.
        generator = copy.deepcopy(base.generator)
        if self.channels_last:
            generator = generator.to(memory_format=torch.channels_last)
        net = LightnessToAb(generator, base.temperature).eval()
        self.net = torch.compile(net, dynamic=False) if backend == "compile" else net

    def describe(self, luma: torch.Tensor) -> torch.Tensor:
        return self.base.describe(luma)

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> TorchBackendModel:
        self.base.to(device)
        self.net.to(device)
        if dtype is not None:
            self.dtype = dtype
        return self

    @torch.inference_mode()
    def predict_chroma(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        lightness = luma_to_lightness(luma.float())
        if hints is not None:
            hints = hints.to(lightness.device, torch.float32)
        if self.channels_last:
            lightness = lightness.contiguous(memory_format=torch.channels_last)
            hints = hints.contiguous(memory_format=torch.channels_last) if hints is not None else None
        with precision(luma.device, self.dtype):
            ab = self.net(lightness, hints)
        return ab_to_chroma(luma.float(), ab.float().contiguous(), matrix)
