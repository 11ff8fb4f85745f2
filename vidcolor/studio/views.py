"""The pictures the studio shows for one frame: grey, the model's colour, and the person's choices.

"choices" is what the run will do on that frame: a reference's colour where the frame has one,
else the model given the frame's hints (the same hints picture, read the same way as ``run
--hints``), else the model alone. Carrying colour between frames is the temporal stage's work: the
page's preview renders a stretch of the film for that.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import torch
from PIL import Image

from vidcolor.color import rgb_to_chroma, rgb_to_luma
from vidcolor.colorizer import Colorizer
from vidcolor.compose import compose_image
from vidcolor.errors import InputError
from vidcolor.hints import hint_planes, read_hint_picture
from vidcolor.studio.choices import Choices
from vidcolor.studio.sources import FilmSource, PhotoSource
from vidcolor.video.references import LUMA_TOLERANCE, read_reference, thumbnail

VIEWS = ("grey", "auto", "choices")
JPEG_QUALITY = 90


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class FrameViews:
    """Colours single frames for the page; one at a time (the model is not re-entrant)."""

    def __init__(self, source: FilmSource | PhotoSource, colorizer: Colorizer, choices: Choices) -> None:
        self.source, self.colorizer, self.choices = source, colorizer, choices
        self._lock = threading.Lock()

    def rgb(self, index: int, view: str) -> np.ndarray:
        """Frame ``index`` as ``view`` (one of VIEWS): RGB (H,W,3) uint8 at full size."""
        if view not in VIEWS:
            raise InputError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
        luma = self.source.luma(index)
        if view == "grey":
            grey = (luma[0, 0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
            return np.repeat(grey[..., None], 3, axis=2)
        matrix = self.source.matrix
        if view == "choices" and index in self.choices.references:
            height, width = self.source.size(index)
            ref = read_reference(index, self.choices.reference_path(index), height, width, matrix)
            return compose_image(luma, rgb_to_chroma(ref.rgb, matrix), 8, matrix)
        with self._lock, torch.no_grad():
            small = self.colorizer.prepare(luma)
            planes = self._hint_planes(index, small) if view == "choices" else None
            chroma = self.colorizer.predict(small, matrix, planes)
        return compose_image(luma, chroma, 8, matrix)

    def _hint_planes(self, index: int, small: torch.Tensor) -> torch.Tensor | None:
        path = self.choices.hints_path(index)
        if index not in self.choices.strokes or not path.is_file():
            return None
        height, width = self.source.size(index)
        hints = read_hint_picture(path, height, width)
        return hint_planes([hints], (int(small.shape[-2]), int(small.shape[-1])))

    def check_reference(self, index: int, rgb: np.ndarray) -> None:
        """InputError unless ``rgb`` is frame ``index`` coloured (its luma close to the frame's)."""
        frame = thumbnail(self.source.luma(index))
        tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        differs = float((thumbnail(rgb_to_luma(tensor, self.source.matrix)) - frame).abs().mean())
        if differs > LUMA_TOLERANCE:
            raise InputError(
                f"this picture is not frame {index} coloured: its brightness differs by {differs:.2f} "
                f"(at most {LUMA_TOLERANCE})"
            )
