"""Luma batch -> chroma batch at render size: device placement, dtype, render_factor."""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.hints import spread_hints
from vidcolor.models.base import ColorModel, render_shape, resize_luma
from vidcolor.settings import RenderConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}: auto, cpu, cuda or cuda:N") from exc


POSTPROCESS = ("native", "vidcolor")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Colorizer:
    """Runs a ColorModel on batches of luma frames of one size.

    ``colorize(luma)`` takes full-resolution luma (B,1,H,W) in [0,1] on any device and returns
    (render luma, CbCr) at render size on the model's device: the temporal stage works there and
    the compose step upsamples the chroma to the frame's chroma planes.
    """

    def __init__(
        self, model: ColorModel, config: RenderConfig = RenderConfig(), video: bool = True, threads: int | None = None
    ) -> None:
        """``threads``: the CPU threads of an ONNX Runtime model (None: torch's count); the video
        pipeline runs the model on one thread beside the other stages (vidcolor.model_thread)."""
        self.device = resolve_device(config.device)
        from vidcolor.backends import prepare_backend  # late: backends imports the model wrappers

        placed = model.to(self.device, DTYPES[config.dtype])
        self.model, self.backend = prepare_backend(placed, config.backend, self.device, DTYPES[config.dtype], threads)
        # Matching features come from the eager model whatever the backend (only films with
        # references or hints ask for them); models without them (DeOldify's) have none.
        self._describe = placed.describe if placed.info.describes else None
        info = model.info
        self.render_factor = config.render_factor or (
            info.default_render_factor_video if video else info.default_render_factor
        )
        self.config = config

    def render_size(self, height: int, width: int) -> tuple[int, int]:
        return render_shape(height, width, self.render_factor, self.model.info.keep_aspect)

    def prepare(self, luma: torch.Tensor) -> torch.Tensor:
        """Full-resolution luma (B,1,H,W) in [0,1], any device -> luma at render size on the model's device."""
        size = self.render_size(*luma.shape[-2:])
        luma = luma.to(self.device, non_blocking=True).float()
        # A model with its own resize (DeOldify: 8-bit grey, Pillow's filter) is fed the way it was trained.
        return self.model.resize_luma(luma, size) if self.model.info.own_resize else resize_luma(luma, size)

    @property
    def native_pictures(self) -> bool:
        """Stills are finished by the model's own post-processing (DeOldify's, DDColor's, when chosen)."""
        # A colour strength other than 1 needs the chroma, so such pictures are composed our way.
        native = self.config.deoldify_postprocess == "native" and self.config.colour_strength == 1.0
        return native and self.model.info.native_pictures

    def predict_native(self, small: torch.Tensor) -> torch.Tensor:
        """Render-size luma (B,1,h,w) -> the model's own output (B,C,h,w), in chunks of
        ``batch_size`` (only for a model with ``predict_native``: see ``native_pictures``)."""
        step = max(1, self.config.batch_size)
        return torch.cat([self.model.predict_native(small[i : i + step]) for i in range(0, len(small), step)])

    def finish_picture(self, native: torch.Tensor, luma: np.ndarray) -> np.ndarray:
        """The model's own output (1,C,h,w) and the picture's full-size luma (H,W) in [0, 1] -> the
        8-bit (H,W,3) picture, by the model's own post-processing (see ``native_pictures``)."""
        return self.model.finish_picture(native[0], luma)

    @property
    def describes(self) -> bool:
        """True when the model gives matching features (``describe``)."""
        return self._describe is not None

    def describe(self, small: torch.Tensor) -> torch.Tensor:
        """Render-size luma (B,1,h,w) -> unit feature vectors at stride 8 (vidcolor.matching)."""
        if self._describe is None:
            raise ValueError(f"model {self.model.info.name!r} gives no matching features")
        return self._describe(small)

    def require_hints(self) -> None:
        """InputError unless the model takes colour hints (checked before any work is done)."""
        if not self.model.info.takes_hints:
            raise InputError(
                f"model {self.model.info.name!r} takes no colour hints; use a model trained with them (see `vidcolor "
                "models list`)"
            )

    def predict(self, small: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None) -> torch.Tensor:
        """Render-size luma (B,1,h,w) (+ hint planes (B,3,h,w)) -> CbCr (B,2,h,w), in chunks of at
        most ``batch_size``."""
        if hints is not None:
            self.require_hints()
            if hints.shape[0] != small.shape[0] or hints.shape[-2:] != small.shape[-2:]:
                raise ValueError(f"hint planes {tuple(hints.shape)} do not match the luma {tuple(small.shape)}")
        step = max(1, self.config.batch_size)
        parts = []
        for i in range(0, len(small), step):
            if hints is None:
                parts.append(self._strength(self.model.predict_chroma(small[i : i + step], matrix)))
            else:
                parts.append(self._predict_hinted(small[i : i + step], hints[i : i + step].to(small.device), matrix))
        return torch.cat(parts) if parts else small.new_zeros((0, 2, *small.shape[-2:]))

    def _predict_hinted(self, small: torch.Tensor, planes: torch.Tensor, matrix: str) -> torch.Tensor:
        """CbCr given hint planes: the model's answer to them, bounded and carried over the region
        each hint is on (HintSpread); with no spread configured, the model's answer alone."""
        spread = self.config.hint_spread
        if spread is None or not bool((planes[:, 2] > 0).any()):
            return self._strength(self.model.predict_chroma(small, matrix, hints=planes))
        # One pass over both: the automatic colour (no hints) bounds how far the model's answer reaches.
        both = self.model.predict_chroma(torch.cat([small, small]), matrix, hints=torch.cat([0 * planes, planes]))
        automatic, hinted = (self._strength(part).float() for part in both.chunk(2))
        return spread_hints(small.float(), hinted, planes, matrix, spread, automatic=automatic)

    def _strength(self, chroma: torch.Tensor) -> torch.Tensor:
        """The model's colour at ``colour_strength`` (before hints are applied: theirs is kept)."""
        strength = self.config.colour_strength
        return chroma if strength == 1.0 else chroma * strength

    def colorize(
        self, luma: torch.Tensor, matrix: str = "bt601", hints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """prepare + predict: (render luma, CbCr at render size); ``hints`` at render size."""
        small = self.prepare(luma)
        return small, self.predict(small, matrix, hints)
