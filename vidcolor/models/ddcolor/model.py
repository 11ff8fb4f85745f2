"""A DDColor network as a ColorModel: DDColor's pre- and post-processing around the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import ab_to_chroma
from vidcolor.errors import ModelError
from vidcolor.models.base import ModelInfo, TorchColorModel, precision
from vidcolor.models.ddcolor import native
from vidcolor.models.ddcolor.checkpoint import (
    RENDER_FACTOR,
    default_name,
    is_ddcolor_file,
    load_ddcolor_file,
    network_from_state,
    read_checkpoint,
)
from vidcolor.models.ddcolor.network import DDColorNet
from vidcolor.models.weights import sha256_file


class DDColorModel(TorchColorModel):
    """A DDColor network as a ColorModel: luma in, CbCr out (the pipeline keeps the luma).

    The network sees what DDColor's own pipeline gives it (``native``): the picture resized to
    the render square by OpenCV's bilinear filter, its L made a grey RGB (``resize_luma`` and
    ``predict_native``). Stills can take DDColor's own ending (ab resized by nearest neighbour
    beside the original L, ``finish_picture``); films compose the chroma of (L, ab) with each
    frame's own luma, as for every model.
    """

    def __init__(self, net: DDColorNet, info: ModelInfo) -> None:
        super().__init__(net, info)

    def resize_luma(self, luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Full-size luma (B,1,H,W) -> what DDColor's resize gives at ``size`` (a square: render_shape)."""
        frames = luma.detach().float().cpu().numpy()[:, 0]
        resized = np.stack([native.resize(frame, *size) for frame in frames])
        return torch.from_numpy(resized)[:, None].to(luma.device)

    @torch.inference_mode()
    def predict_native(self, square: torch.Tensor) -> torch.Tensor:
        """(B,1,s,s) grey square -> (B,2,s,s) DDColor's ab."""
        x = native.network_inputs(square)
        with precision(x.device, self.dtype):
            return self.generator(x).float()

    def finish_picture(self, ab_square: torch.Tensor, luma: np.ndarray) -> np.ndarray:
        """DDColor's ending for a still: ab (2,s,s) + full-size luma (H,W) in [0, 1] -> (H,W,3)
        uint8, the original's 8-bit grey giving L."""
        return native.finish_picture(ab_square, native.grey_8bit(luma))

    @torch.inference_mode()
    def predict_chroma(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        if hints is not None:
            raise ModelError(f"model {self.info.name!r} takes no colour hints")
        h, w = luma.shape[-2:]
        # The Colorizer gives a square of side render_factor × 16; anything else is stretched to
        # the nearest such square, as DDColor does, and the chroma stretched back.
        side = max(32, round((h * w) ** 0.5 / 16) * 16)
        square = luma.float() if h == w and h % 16 == 0 else self.resize_luma(luma, (side, side))
        ab = self.predict_native(square)
        chroma = ab_to_chroma(square, ab, matrix)
        if chroma.shape[-2:] != (h, w):
            chroma = F.interpolate(chroma, size=(h, w), mode="bilinear", align_corners=False)
        return chroma


def model_info(net: DDColorNet, name: str, sha256: str, version: str = "", source: str = "") -> ModelInfo:
    extra = {"size": net.spec.size, "architecture": net.spec.description}
    if source:
        extra["source"] = source
    return ModelInfo(
        name=name,
        version=version,
        sha256=sha256,
        default_render_factor=RENDER_FACTOR,
        default_render_factor_video=RENDER_FACTOR,
        keep_aspect=False,
        own_resize=True,
        native_pictures=True,
        onnx_network=True,
        extra=extra,
    )


def load_ddcolor_model(path: str | Path) -> DDColorModel:
    """``--model ddcolor:PATH``: a published DDColor file or one the import command wrote."""
    path = Path(path)
    if is_ddcolor_file(path):
        return load_converted_model(path)
    net = network_from_state(read_checkpoint(path), str(path))
    return DDColorModel(net, model_info(net, default_name(path), sha256_file(path), source=str(path)))


def load_converted_model(
    path: str | Path, expected_sha256: str | None = None, name: str | None = None, version: str | None = None
) -> DDColorModel:
    """A converted file as a ColorModel (the registry's loader for paths and registered names)."""
    net, meta = load_ddcolor_file(path, expected_sha256)
    digest = expected_sha256 or sha256_file(path)
    return DDColorModel(
        net,
        model_info(
            net,
            name or meta.get("name", Path(path).stem),
            digest,
            version if version is not None else meta.get("version", ""),
            str(path),
        ),
    )
