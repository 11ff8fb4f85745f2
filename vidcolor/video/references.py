"""Reference frames: a person's colour for chosen frames of a film (``vidcolor run --reference``).

A reference is a full-size colour picture of one frame: the frame as decoded (``vidcolor
keyframes`` writes them), recoloured in any image editor. Its chroma replaces the model's at that
frame and the temporal stage carries it through the shot (vidcolor.temporal); its luma is only
used to check that it belongs to the frame it names. Frames are counted from 0 in decoding order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_chroma, rgb_to_luma
from vidcolor.errors import InputError
from vidcolor.media.images import read_guide_picture

# Thumbnail used to match a reference's luma against frames (long side, pixels).
THUMB_SIDE = 64
# Mean absolute luma difference (0..1) of the thumbnails above which a reference does not belong
# to its frame. A colour edit moves luma a little (an editor's "colour" blend keeps L*, not Y');
# another frame of a moving shot differs by far more.
LUMA_TOLERANCE = 0.05


@dataclass
class Reference:
    """One reference, read and checked for size: where it came from, its RGB and its luma thumbnail."""

    frame: int
    path: Path
    rgb: torch.Tensor  # (1,3,H,W) in [0,1]
    thumb: torch.Tensor  # (1,1,h,w) luma thumbnail

    def chroma(self, size: tuple[int, int], padded: tuple[int, int], matrix: str) -> torch.Tensor:
        """CbCr (1,2,h,w) at the render ``size`` of the ``padded`` (coded) frame, in ``matrix``."""
        rgb = self.rgb
        ph, pw = padded[0] - rgb.shape[-2], padded[1] - rgb.shape[-1]
        if ph or pw:  # the coded frame's padding is at the bottom right, as the luma's
            rgb = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
        chroma = rgb_to_chroma(rgb, matrix)
        return F.interpolate(chroma, size=size, mode="bilinear", align_corners=False, antialias=True)


def thumbnail(luma: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) luma -> area-averaged thumbnails with the long side THUMB_SIDE."""
    h, w = luma.shape[-2:]
    scale = THUMB_SIDE / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.adaptive_avg_pool2d(luma.float(), size)


def read_reference(frame: int, path: Path, height: int, width: int, matrix: str) -> Reference:
    """Read one reference; it must be ``width`` x ``height`` (the film's frame). InputError otherwise."""
    # Named "picture" in its errors: "not a readable picture", "picture is 60x40, the film's frames ...".
    rgb, _ = read_guide_picture(path, (width, height), "RGB", "picture", f"the film's frames are {width}x{height}")
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    return Reference(frame, path, tensor, thumbnail(rgb_to_luma(tensor, matrix)))


def read_references(
    pictures: dict[int, Path], height: int, width: int, matrix: str, frames: int | None
) -> list[Reference]:
    """Every reference read and its size checked, before any work; ``frames``: the film's count if known."""
    refs = []
    for index, path in sorted(pictures.items()):
        if frames and index >= frames:
            raise InputError(f"{path}: frame {index} is past the film's end ({frames} frames, counted from 0)")
        refs.append(read_reference(index, path, height, width, matrix))
    return refs


def check_references(
    refs: Sequence[Reference], thumbs: Iterable[torch.Tensor], times: Sequence[float] | None = None
) -> None:
    """Refuse a reference whose luma does not match its frame, naming the frame that matches best.

    ``thumbs``: the film's frames' luma thumbnails in order ((B,1,h,w) batches, from ``thumbnail``).
    Stops reading as soon as every reference has been matched; a mismatch reads on to the end to
    find the best frame."""
    if not refs:
        return
    own: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}
    last = max(r.frame for r in refs)
    index = 0
    for batch in _batches(thumbs):
        for frame_thumb in batch:
            for ref in refs:
                diff = float((frame_thumb[None] - ref.thumb).abs().mean())
                if ref.frame == index:
                    own[ref.frame] = diff
                if diff < best.get(ref.frame, (float("inf"), -1))[0]:
                    best[ref.frame] = (diff, index)
            index += 1
        if index > last and all(own[r.frame] <= LUMA_TOLERANCE for r in refs):
            return
    for ref in refs:
        if ref.frame not in own:
            raise InputError(f"{ref.path}: frame {ref.frame} is past the film's end ({index} frames, counted from 0)")
        if own[ref.frame] > LUMA_TOLERANCE:
            diff, match = best[ref.frame]
            when = f" (at {times[match]:.3f} s)" if times is not None and match < len(times) else ""
            raise InputError(
                f"{ref.path}: does not match frame {ref.frame} (mean luma difference {own[ref.frame]:.3f}); "
                f"the frame that matches best is {match}{when} (difference {diff:.3f})"
            )


def _batches(thumbs: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    for batch in thumbs:
        yield batch if batch.dim() == 4 else batch[None]
