"""A DeOldify generator as a ColorModel: DeOldify's pre- and post-processing around the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_chroma
from vidcolor.errors import ModelError
from vidcolor.models.base import ModelInfo, TorchColorModel, precision, resize_luma
from vidcolor.models.deoldify import native
from vidcolor.models.deoldify.checkpoint import (
    generator_from_state,
    is_deoldify_file,
    load_deoldify_file,
    read_checkpoint,
)
from vidcolor.models.deoldify.unet import RENDER_FACTOR, RENDER_FACTOR_VIDEO, DeOldifyUnet, spec_for
from vidcolor.models.weights import sha256_file

# --------------------------------------------------------------------------- as a ColorModel


class DeOldifyModel(TorchColorModel):
    """A DeOldify generator as a ColorModel: luma in, CbCr out (the pipeline keeps the luma).

    DeOldify's own pre-processing (``native``): the frame made 8-bit grey, stretched to the
    render square with Pillow's bilinear filter (``resize_luma``, which the Colorizer uses for
    this model), ImageNet-normalised; the output de-normalised, clamped and truncated to 8 bits
    (``predict_native``). Stills can also take DeOldify's own post-processing (native.finish_picture,
    chosen in vidcolor.stills); video composes the chroma of that RGB with the frame's own luma.
    """

    def __init__(self, generator: DeOldifyUnet, info: ModelInfo) -> None:
        super().__init__(generator, info)

    def resize_luma(self, luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Full-size luma (B,1,H,W) -> what DeOldify's network sees at ``size`` (a square)."""
        return native.squares(luma, size[0]) if size[0] == size[1] else resize_luma(luma, size)

    @torch.inference_mode()
    def predict_native(self, square: torch.Tensor) -> torch.Tensor:
        """(B,1,s,s) grey on 8-bit steps -> (B,3,s,s) DeOldify's 8-bit RGB output, in [0, 1]."""
        x = native.normalise(square)
        with precision(x.device, self.dtype):
            out = self.generator(x).float()
        return native.output_8bit(out)

    def finish_picture(self, rgb_square: torch.Tensor, luma: np.ndarray) -> np.ndarray:
        """DeOldify's post-processing of a still: (3,s,s) 8-bit RGB + full-size luma (H,W) in
        [0, 1] -> (H,W,3) uint8, the original's 8-bit Y kept in OpenCV's YUV."""
        return native.finish_picture(rgb_square, native.grey_8bit(luma))

    @torch.inference_mode()
    def predict_chroma(self, luma: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
        h, w = luma.shape[-2:]
        # The Colorizer already gives a square of side render_factor × 16; anything else is
        # stretched to the nearest such square, as DeOldify does, and the chroma stretched back.
        side = max(16, round((h * w) ** 0.5 / 16) * 16)
        square = h == w and h % 16 == 0
        x = luma.float().clamp(0.0, 1.0) if square else native.squares(luma, side)
        chroma = rgb_to_chroma(self.predict_native(x), matrix)
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
        own_resize=True,
        native_pictures=True,
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
        return DeOldifyModel(
            generator,
            model_info(
                kind, meta.get("name", f"deoldify-{kind}"), sha256_file(path), meta.get("version", ""), str(path)
            ),
        )
    generator = generator_from_state(read_checkpoint(path), kind, str(path))
    return DeOldifyModel(generator, model_info(kind, f"deoldify-{kind}", sha256_file(path), source=str(path)))


def load_converted_model(
    path: str | Path, expected_sha256: str | None = None, name: str | None = None, version: str | None = None
) -> DeOldifyModel:
    """A converted file as a ColorModel (used by the registry for paths and registered names)."""
    generator, meta = load_deoldify_file(path, expected_sha256)
    digest = expected_sha256 or sha256_file(path)
    return DeOldifyModel(
        generator,
        model_info(
            generator.spec.kind,
            name or meta.get("name", Path(path).stem),
            digest,
            version if version is not None else meta.get("version", ""),
            str(path),
        ),
    )
