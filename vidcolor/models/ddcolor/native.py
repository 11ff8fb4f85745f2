"""DDColor's own pre- and post-processing around its network, step for step (its inference
pipeline), as pure functions on vidcolor's grey picture. No model, no state.

DDColor, for a picture (OpenCV BGR, 8 bits):
1. divides by 255 (float32) and keeps the ORIGINAL picture's L (OpenCV's float Lab);
2. resizes the picture to a square of side ``input_size`` (OpenCV's default, bilinear without
   antialiasing), takes that square's L and turns (L, 0, 0) back into RGB: the network's input;
3. runs the network: ab at the square's size;
4. resizes ab to the picture's size with ``F.interpolate``'s default (nearest), puts it beside
   the original L, converts Lab to BGR and writes ``round(x × 255)`` as 8 bits.

Step 4 casts without clipping (an out-of-gamut value wraps around in DDColor's own output); here
it is clipped to [0, 255], the only place the two may differ, and only where DDColor's picture
is broken.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def grey_8bit(luma: np.ndarray) -> np.ndarray:
    """(H, W) float luma in [0, 1] -> (H, W) uint8, rounded (an 8-bit grey file's own values)."""
    return np.clip(np.rint(luma * 255.0), 0, 255).astype(np.uint8)


def resize(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 2's resize: (H, W) float32 grey in [0, 1] -> (height, width), OpenCV bilinear (DDColor
    asks for a square). On a grey picture DDColor's 3-channel resize gives these same values."""
    return cv2.resize(np.ascontiguousarray(grey, dtype=np.float32), (width, height))


def lightness(grey: np.ndarray) -> np.ndarray:
    """(H, W) float32 grey in [0, 1] -> (H, W) float32 L in [0, 100] (OpenCV's float Lab)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(grey, dtype=np.float32), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)[:, :, 0]


def network_input(square: np.ndarray) -> np.ndarray:
    """Step 2's ending: a (s, s) float32 grey square -> (3, s, s) RGB of its L with a = b = 0."""
    light = lightness(square)
    lab = np.stack([light, np.zeros_like(light), np.zeros_like(light)], axis=-1)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).transpose(2, 0, 1)


def network_inputs(squares: torch.Tensor) -> torch.Tensor:
    """(B,1,s,s) grey squares -> (B,3,s,s) the network's grey RGB, on the squares' device."""
    frames = squares.detach().float().cpu().numpy()[:, 0]
    return torch.from_numpy(np.stack([network_input(f) for f in frames])).to(squares.device)


def upsample_ab(ab: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Step 4's resize: (B,2,s,s) -> (B,2,H,W), nearest, as DDColor calls ``F.interpolate``."""
    return F.interpolate(ab.float(), size=(height, width))


def finish_picture(ab_square: torch.Tensor, grey: np.ndarray) -> np.ndarray:
    """The network's ab (2,s,s) and the original grey picture (H,W) uint8 -> the (H,W,3) uint8
    RGB picture DDColor writes (clipped, not wrapped)."""
    height, width = grey.shape
    image = (grey / 255.0).astype(np.float32)
    light = lightness(image)
    ab = upsample_ab(ab_square[None], height, width)[0].cpu().numpy().transpose(1, 2, 0)
    lab = np.concatenate([light[:, :, None], ab], axis=-1)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
