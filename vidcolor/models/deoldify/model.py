"""A DeOldify generator as a ColorModel: DeOldify's pre- and post-processing around the network."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_chroma
from vidcolor.errors import ModelError
from vidcolor.models.base import ModelInfo, TorchColorModel, precision, resize_luma
from vidcolor.models.deoldify.checkpoint import generator_from_state, is_deoldify_file, load_deoldify_file, read_checkpoint
from vidcolor.models.deoldify.unet import IMAGENET_MEAN, IMAGENET_STD, RENDER_FACTOR, RENDER_FACTOR_VIDEO, DeOldifyUnet, spec_for
from vidcolor.models.weights import sha256_file

# --------------------------------------------------------------------------- as a ColorModel


class DeOldifyModel(TorchColorModel):
    """A DeOldify generator as a ColorModel: luma in, CbCr out (the pipeline keeps the luma).

    DeOldify's own pre/post-processing: the frame stretched to a square render size, made grey
    (3 equal channels), ImageNet-normalised; the output denormalised to RGB in [0, 1], and only
    its chroma used. DeOldify also rounds that RGB to 8 bits before taking the chroma; we keep
    floats (a difference below one 8-bit code value).
    """

    def __init__(self, generator: DeOldifyUnet, info: ModelInfo) -> None:
        super().__init__(generator, info)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        with precision(x.device, self.dtype):
            return self.generator(x).float()

    @torch.inference_mode()
    def predict_chroma(self, luma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
        h, w = luma.shape[-2:]
        # The colorizer already gives a square of side render_factor × 16; anything else is
        # stretched to the nearest such square, as DeOldify does, and the chroma stretched back.
        side = max(16, round((h * w) ** 0.5 / 16) * 16)
        square = h == w and h % 16 == 0
        x = luma.float().clamp(0.0, 1.0) if square else resize_luma(luma.float().clamp(0.0, 1.0), (side, side))
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        out = self._run((x.expand(-1, 3, -1, -1) - mean) / std)
        rgb = (out * std + mean).clamp(0.0, 1.0)
        chroma = rgb_to_chroma(rgb, matrix)
        if not square:
            chroma = F.interpolate(chroma, size=(h, w), mode="bilinear", align_corners=False)
        return chroma


def model_info(kind: str, name: str, sha256: str, version: str = "", source: str = "") -> ModelInfo:
    extra = {"kind": kind, "architecture": spec_for(kind).description}
    if source:
        extra["source"] = source
    return ModelInfo(
        name=name,
        version=version,
        sha256=sha256,
        default_render_factor=RENDER_FACTOR,
        default_render_factor_video=RENDER_FACTOR_VIDEO,
        keep_aspect=False,
        extra=extra,
    )


def load_deoldify_model(kind: str, path: str | Path) -> DeOldifyModel:
    """``--model deoldify-KIND:PATH``: a DeOldify ``.pth`` or a file the import command wrote."""
    spec = spec_for(kind)
    path = Path(path)
    if is_deoldify_file(path):
        generator, meta = load_deoldify_file(path)
        if generator.spec.arch != spec.arch:
            raise ModelError(f"{path}: holds a DeOldify {generator.spec.kind} generator, not {kind}")
        return DeOldifyModel(generator, model_info(kind, meta.get("name", f"deoldify-{kind}"), sha256_file(path), meta.get("version", ""), str(path)))
    generator = generator_from_state(read_checkpoint(path), kind, str(path))
    return DeOldifyModel(generator, model_info(kind, f"deoldify-{kind}", sha256_file(path), source=str(path)))


def load_converted_model(path: str | Path, expected_sha256: str | None = None, name: str | None = None, version: str | None = None) -> DeOldifyModel:
    """A converted file as a ColorModel (used by the registry for paths and registered names)."""
    generator, meta = load_deoldify_file(path, expected_sha256)
    digest = expected_sha256 or sha256_file(path)
    return DeOldifyModel(
        generator,
        model_info(generator.spec.kind, name or meta.get("name", Path(path).stem), digest, version if version is not None else meta.get("version", ""), str(path)),
    )
