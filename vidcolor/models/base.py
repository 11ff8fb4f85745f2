"""What the pipeline needs of any colorization model: luma in, chroma out.

Every model (our generator, DeOldify's, an ONNX session) is wrapped as a ``ColorModel``. The
pipeline never sees Lab or ImageNet normalisation: those are the wrapper's business.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import ab_to_chroma, luma_to_lightness
from vidcolor.errors import ModelError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str = ""
    sha256: str = ""
    default_render_factor: int = 16  # render size = render_factor × 16 (DeOldify's convention)
    default_render_factor_video: int = 16
    keep_aspect: bool = True  # False: stretched to a square (DeOldify)
    # Capabilities, declared by the model's family (vidcolor.models.families), never probed:
    takes_hints: bool = False  # accepts colour-hint planes beside the luma (vidcolor.hints)
    describes: bool = False  # gives matching features (``describe``; vidcolor.matching)
    own_resize: bool = False  # resizes the luma its own way (``resize_luma``; DeOldify's 8-bit grey)
    native_pictures: bool = False  # can finish stills its own way (``predict_native``, ``finish_picture``)
    onnx_network: bool = False  # its ``generator`` is one tensor in, one out: ONNX Runtime can run it
    extra: dict[str, str] = field(default_factory=dict)


class ColorModel(Protocol):
    """Every model the pipeline runs. ``predict_chroma`` is required; the other methods work only
    where ``info`` declares the capability (``ColorModelBase`` refuses them otherwise)."""

    info: ModelInfo

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> ColorModel:
        """The model on ``device`` computing in ``dtype`` (torch models move, like a Module)."""
        ...

    def predict_chroma(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,1,h,w) luma Y' in [0,1] at render size -> (B,2,h,w) CbCr centred on 0; ``hints``
        (B,3,h,w) planes (vidcolor.hints) only for a model whose ``info.takes_hints``."""
        ...

    def describe(self, luma: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) render luma -> (B,C,h/8,w/8) unit feature vectors (``info.describes``)."""
        ...

    def resize_luma(self, luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Full-size luma (B,1,H,W) -> what the network sees at ``size`` (``info.own_resize``)."""
        ...

    def predict_native(self, small: torch.Tensor) -> torch.Tensor:
        """Render luma (B,1,h,w) -> the model's own output (B,C,h,w) as its publisher's code keeps
        it for finishing a picture: DeOldify's 8-bit RGB, DDColor's ab (``info.native_pictures``)."""
        ...

    def finish_picture(self, native: torch.Tensor, luma: np.ndarray) -> np.ndarray:
        """The model's own output (C,h,w) + full-size luma (H,W) -> (H,W,3) uint8, by its
        publisher's post-processing (``info.native_pictures``)."""
        ...


class ColorModelBase:
    """The optional methods of ``ColorModel``, refused for a model that does not declare them."""

    info: ModelInfo

    def _lacks(self, what: str) -> ModelError:
        return ModelError(f"model {self.info.name!r} has no {what}")

    def describe(self, luma: torch.Tensor) -> torch.Tensor:
        raise self._lacks("matching features")

    def resize_luma(self, luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize_luma(luma, size)

    def predict_native(self, small: torch.Tensor) -> torch.Tensor:
        raise self._lacks("picture post-processing of its own")

    def finish_picture(self, native: torch.Tensor, luma: np.ndarray) -> np.ndarray:
        raise self._lacks("picture post-processing of its own")


def render_shape(height: int, width: int, render_factor: int, keep_aspect: bool, multiple: int = 32) -> tuple[int, int]:
    """Model input size for a frame: about (render_factor·16)² pixels.

    ``keep_aspect`` keeps the frame's shape (sides rounded to ``multiple``); otherwise the frame is
    stretched to a square, as DeOldify does.
    """
    side = render_factor * 16
    if not keep_aspect:
        return side, side
    scale = side / (height * width) ** 0.5
    h = max(multiple, round(height * scale / multiple) * multiple)
    w = max(multiple, round(width * scale / multiple) * multiple)
    return h, w


def precision(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` where it is reduced (bf16, fp16) and autocast exists
    there; otherwise nothing (float32 runs as it is)."""
    if dtype != torch.float32 and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


class TorchColorModel(ColorModelBase):
    """What every torch-backed ColorModel shares: a network in eval mode, its info, the device it
    runs on and the dtype it computes in (``to``)."""

    def __init__(self, generator: torch.nn.Module, info: ModelInfo) -> None:
        self.generator = generator.eval()
        self.info = info
        self.dtype: torch.dtype = torch.float32

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> Self:
        self.generator.to(device)
        if dtype is not None:
            self.dtype = dtype
        return self


class LightnessToAb(torch.nn.Module):
    """The generator with its temperature fixed: L* (+ hint planes) -> ab (what the ONNX graph computes)."""

    def __init__(self, generator: torch.nn.Module, temperature: float | None) -> None:
        super().__init__()
        self.generator = generator
        self.temperature = temperature

    def forward(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(lightness, temperature=self.temperature, hints=hints)


class GeneratorModel(TorchColorModel):
    """Our U-Net generator as a ColorModel: L* in, ab out, converted to CbCr with the input luma."""

    def __init__(self, generator: torch.nn.Module, info: ModelInfo, temperature: float | None = None) -> None:
        super().__init__(generator, info)
        self.temperature = temperature

    @torch.inference_mode()
    def predict_chroma(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> torch.Tensor:
        lightness = luma_to_lightness(luma)
        hints = hints.to(lightness.device, lightness.dtype) if hints is not None else None
        with precision(luma.device, self.dtype):
            ab = self.generator(lightness, temperature=self.temperature, hints=hints)
        return ab_to_chroma(luma, ab.float(), matrix)

    @torch.inference_mode()
    def describe(self, luma: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) luma at render size -> the generator's matching features at stride 8
        (vidcolor.matching: a reference's colour found again by what things are)."""
        lightness = luma_to_lightness(luma)
        with precision(luma.device, self.dtype):
            return self.generator.match_features(lightness).float()


def resize_luma(luma: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-filtered resize of (B,1,H,W) luma to the render size."""
    if tuple(luma.shape[-2:]) == tuple(size):
        return luma
    return F.interpolate(luma, size=size, mode="bilinear", align_corners=False, antialias=True)
