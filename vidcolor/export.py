"""``vidcolor export onnx``: write a vidcolor generator's ONNX graph (vidcolor.models.onnx_graph,
the contract: ``lightness`` L* in, ``ab`` out, optional ``hints``) to a file, with its metadata and
a check against PyTorch, for ONNX Runtime (``--model model.onnx``) or any other runtime.

With a fixed render size any H, W is accepted at export time (the padding to a multiple of 32 is
part of the graph). With ``dynamic`` sizes, the batch, H and W are free but H and W must be
multiples of 32 (the wrapper in vidcolor.backends pads; the metadata says so). The
classification head's annealed-mean temperature is baked in. The file's metadata records the
model's name, version, sha256, default render factors and the conventions above, so
``vidcolor.models.onnx_graph.load_onnx_model`` rebuilds a ColorModel from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vidcolor.errors import InputError, ModelError, OutputError
from vidcolor.media.outfile import atomic_write, check_output_file
from vidcolor.models.base import ColorModel, GeneratorModel, LightnessToAb
from vidcolor.models.onnx_graph import FORMAT, MULTIPLE, onnx_bytes, require_onnx


def parse_render_size(text: str | None) -> tuple[int, int] | None:
    """``--render-size`` value: ``HxW`` -> (H, W); ``dynamic`` (or None) -> None."""
    if text is None or text.strip().lower() == "dynamic":
        return None
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InputError(f"--render-size {text!r}: write HxW (for example 192x352) or 'dynamic'")
    h, w = (int(p) for p in parts)
    if not (16 <= h <= 4096 and 16 <= w <= 4096):
        raise InputError(f"--render-size {text!r}: each side must lie in 16..4096")
    return h, w


def generator_of(model: ColorModel) -> GeneratorModel:
    if not isinstance(model, GeneratorModel):
        raise ModelError(f"model {model.info.name!r} is not a vidcolor generator; only those export to ONNX")
    return model


def metadata_for(model: GeneratorModel, render_size: tuple[int, int] | None) -> dict[str, str]:
    info = model.info
    return {
        "format": FORMAT,
        "name": info.name,
        "version": info.version,
        "source_sha256": info.sha256,
        "default_render_factor": str(info.default_render_factor),
        "default_render_factor_video": str(info.default_render_factor_video),
        "temperature": "" if model.temperature is None else repr(model.temperature),
        "render_size": "dynamic" if render_size is None else f"{render_size[0]}x{render_size[1]}",
        "size_multiple": str(MULTIPLE if render_size is None else 1),
        "input": "lightness: CIE L* (B,1,H,W) float32 in [0,100]"
        + ("; hints: (B,3,H,W) float32 a*/110, b*/110, mask (zeros: no hints)" if info.takes_hints else ""),
        "takes_hints": "1" if info.takes_hints else "0",
        "output": "ab: CIE a*b* (B,2,H,W) float32, same H, W",
    }


def with_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "vidcolor"
    return proto.SerializeToString()


@dataclass(frozen=True)
class ExportResult:
    path: Path
    render_size: str  # "HxW" or "dynamic"
    bytes: int
    max_ab_error: float  # ONNX Runtime vs PyTorch on a test input, in a*b* units
    checked_size: tuple[int, int]


def check_destination(dst: str | Path, overwrite: bool) -> Path:
    """Refuse a non-.onnx name, a folder, an existing file without ``overwrite``, a missing folder."""
    dst = Path(dst)
    if dst.suffix.lower() != ".onnx":
        raise OutputError(f"{dst}: give a .onnx file name")
    check_output_file(dst, overwrite)
    return dst


def export_onnx(
    model: ColorModel, dst: str | Path, render_size: tuple[int, int] | None = None, overwrite: bool = False
) -> ExportResult:
    """Write ``model`` to ``dst`` as ONNX (atomically) and check it against PyTorch with ONNX Runtime."""
    require_onnx()
    dst = check_destination(dst, overwrite)
    gen = generator_of(model)
    gen.to(torch.device("cpu"), torch.float32)
    data = with_metadata(onnx_bytes(gen, render_size), metadata_for(gen, render_size))
    check = render_size or (3 * MULTIPLE, 5 * MULTIPLE)  # a non-square size other than the tracing one
    error = verify(data, gen, check)
    atomic_write(dst, lambda f: f.write(data), overwrite=True)
    size = "dynamic" if render_size is None else f"{render_size[0]}x{render_size[1]}"
    return ExportResult(dst, size, len(data), error, check)


def verify(data: bytes, model: GeneratorModel, size: tuple[int, int]) -> float:
    """Max |ab| difference between ONNX Runtime and PyTorch on a smooth test input of ``size``."""
    import onnxruntime as ort

    h, w = size
    yy = torch.linspace(0, 1, h).view(h, 1)
    xx = torch.linspace(0, 1, w).view(1, w)
    lightness = (100.0 * (0.5 + 0.5 * torch.sin(6 * xx + 4 * yy))).expand(2, 1, h, w).contiguous()
    lightness[1] = 100.0 - lightness[1]
    hints = None
    if model.info.takes_hints:  # one hinted square on the first picture, none on the second
        hints = torch.zeros(2, 3, h, w)
        hints[0, 0, h // 4 : h // 4 + 3, w // 4 : w // 4 + 3] = 0.4
        hints[0, 2, h // 4 : h // 4 + 3, w // 4 : w // 4 + 3] = 1.0
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feed = {"lightness": lightness.numpy()} | ({"hints": hints.numpy()} if hints is not None else {})
    got = torch.from_numpy(session.run(["ab"], feed)[0])
    with torch.no_grad():
        want = LightnessToAb(model.generator, model.temperature).eval()(lightness, hints)
    if got.shape != want.shape:
        raise ModelError(f"ONNX export produced shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
    return float((got - want).abs().max())
