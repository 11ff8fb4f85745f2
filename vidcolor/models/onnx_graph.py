"""A vidcolor generator as an ONNX graph: building it (``onnx_bytes``) and running one with ONNX
Runtime as a ColorModel (``OnnxRuntimeModel``; ``load_onnx_model`` for a file). The contract is
shared by the ONNX Runtime backend (vidcolor.backends, which builds the graph in memory at start),
the export tool (vidcolor.export, which writes it to a file with its metadata) and the registry
(which loads such files by path).

- input ``lightness``: CIE L* (B,1,H,W) float32 in [0, 100] (``vidcolor.color.luma_to_lightness``);
- optional input ``hints`` (B,3,H,W) for a model that takes colour hints (zeros: automatic colour);
- output ``ab``: CIE a*, b* (B,2,H,W) float32 at the same size.

The colour conversions around it depend on the video's matrix and stay in vidcolor.color.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.color import ab_to_chroma, luma_to_lightness
from vidcolor.errors import InputError, ModelError
from vidcolor.models.base import ColorModelBase, GeneratorModel, LightnessToAb, ModelInfo
from vidcolor.models.weights import sha256_file

OPSET = 17
MULTIPLE = 32  # the generator's stride: dynamic-size inputs must be multiples of it
FORMAT = "vidcolor-generator-onnx"


def missing_onnx_package() -> str | None:
    """The first of onnx, onnxruntime that is not installed, or None. Found, not imported:
    importing onnx alone takes ~1 s, and a run whose graph is cached never needs it."""
    for name in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def require_onnx() -> None:
    missing = missing_onnx_package()
    if missing is not None:
        raise ModelError(
            f"ONNX support needs onnx and onnxruntime (vidcolor's own dependencies; {missing} is missing): pip "
            "install onnx onnxruntime"
        )


def onnx_bytes(model: GeneratorModel, render_size: tuple[int, int] | None, opset: int = OPSET) -> bytes:
    """The model as an in-memory ONNX file (float32, CPU), fixed ``render_size`` or dynamic (None)."""
    module = LightnessToAb(model.generator, model.temperature).eval()
    params = next(model.generator.parameters())
    if params.device.type != "cpu" or params.dtype != torch.float32:
        raise ModelError("ONNX export needs the model's weights on the CPU in float32")
    h, w = render_size or (2 * MULTIPLE, 2 * MULTIPLE)
    sample = torch.full((1, 1, h, w), 50.0)
    # A hint model's graph takes the hint planes as a second input (zeros: automatic colour).
    names = ["lightness", "hints"] if model.info.takes_hints else ["lightness"]
    inputs = (sample, torch.zeros(1, 3, h, w)) if model.info.takes_hints else (sample,)
    free = {0: "batch"} if render_size is not None else {0: "batch", 2: "height", 3: "width"}
    axes = {name: free for name in [*names, "ab"]}
    buf = io.BytesIO()
    # The TorchScript exporter: no extra dependency (the dynamo one needs onnxscript). Its
    # deprecation and tracer warnings say nothing the user can act on.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            buf,
            dynamo=False,
            input_names=names,
            output_names=["ab"],
            opset_version=opset,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return buf.getvalue()


class OnnxRuntimeModel(ColorModelBase):
    """An ONNX graph (L* -> ab, the contract above) run by ONNX Runtime as a ColorModel."""

    def __init__(self, model: bytes | str, info: ModelInfo, multiple: int = 32, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.source, self.threads = model, threads or torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Decode and encode threads share the cores with the model: idle ONNX Runtime workers
        # must sleep rather than spin, or they steal the encoder's CPU time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (unexported) exception types
            raise ModelError(f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names = [i.name for i in inputs]
        if names not in (["lightness"], ["lightness", "hints"]) or [o.name for o in outputs] != ["ab"]:
            raise ModelError("not a vidcolor ONNX model (expects input 'lightness' (and 'hints') and output 'ab')")
        shape = inputs[0].shape
        self.fixed_size = tuple(shape[2:]) if all(isinstance(s, int) for s in shape[2:]) else None
        self.hint_input = names == ["lightness", "hints"]
        self.info = replace(info, takes_hints=self.hint_input, describes=False, own_resize=False, native_pictures=False)
        self.multiple = multiple

    def with_threads(self, threads: int | None) -> OnnxRuntimeModel:
        """The same graph in a session with ``threads`` intra-op threads (None: this one)."""
        if threads is None or threads == self.threads:
            return self
        return OnnxRuntimeModel(self.source, self.info, self.multiple, threads)

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> OnnxRuntimeModel:
        if device.type != "cpu":
            raise InputError("an ONNX model runs on the CPU here; use --device cpu")
        if dtype not in (None, torch.float32):
            raise InputError("an ONNX model runs float32; leave --dtype at float32")
        return self

    @torch.inference_mode()
    def predict_chroma(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        luma = luma.float().cpu()
        h, w = luma.shape[-2:]
        lightness = luma_to_lightness(luma)
        if hints is not None and not self.hint_input:
            raise InputError(f"model {self.info.name!r} takes no colour hints")
        if self.hint_input:
            hints = hints.float().cpu() if hints is not None else luma.new_zeros(luma.shape[0], 3, h, w)
        if self.fixed_size is not None:
            if (h, w) != self.fixed_size:
                fh, fw = self.fixed_size
                raise InputError(f"this ONNX model was exported for {fh}x{fw} inputs, the render size is {h}x{w}")
        else:
            ph, pw = (-h) % self.multiple, (-w) % self.multiple
            if ph or pw:
                lightness = F.pad(lightness, (0, pw, 0, ph), mode="replicate")
                hints = F.pad(hints, (0, pw, 0, ph)) if hints is not None else None  # no hints in the padding
        feed = {"lightness": lightness.contiguous().numpy()}
        if hints is not None:
            feed["hints"] = hints.contiguous().numpy()
        ab = torch.from_numpy(self.session.run(["ab"], feed)[0])
        return ab_to_chroma(luma, ab[..., :h, :w].contiguous(), matrix)


def read_format(path: Path) -> str:
    """The ``format`` tag in an ONNX file's metadata ("" when it has none)."""
    require_onnx()
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise ModelError(f"{path}: not a readable ONNX file ({exc.__class__.__name__})") from None
    return {m.key: m.value for m in proto.metadata_props}.get("format", "")


def load_onnx_model(path: str) -> OnnxRuntimeModel:
    """A file written by ``vidcolor export onnx`` as a ColorModel (its metadata gives name, version
    and render factors; a fixed-size export only accepts that render size)."""
    require_onnx()
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise ModelError(f"{p}: not a readable ONNX file ({exc.__class__.__name__})") from None
    meta = {m.key: m.value for m in proto.metadata_props}
    if meta.get("format") != FORMAT:
        raise ModelError(f"{p}: not written by `vidcolor export onnx` (no vidcolor metadata)")
    info = ModelInfo(
        name=meta.get("name", p.stem),
        version=meta.get("version", ""),
        sha256=sha256_file(p),
        default_render_factor=int(meta.get("default_render_factor", 16)),
        default_render_factor_video=int(meta.get("default_render_factor_video", 16)),
        extra={"source_sha256": meta.get("source_sha256", ""), "render_size": meta.get("render_size", "")},
    )
    return OnnxRuntimeModel(str(p), info, multiple=int(meta.get("size_multiple", 32)))
