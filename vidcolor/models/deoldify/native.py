"""DeOldify's own pre- and post-processing around its network, step for step (deoldify/filters.py).

DeOldify, for a picture:
1. stretches the RGB picture to a square of side render_factor × 16 (Pillow, bilinear), makes it
   grey (Pillow's ``L``, back to 3 equal channels), divides by 255 and ImageNet-normalises;
2. runs the network, de-normalises, clamps to [0, 1] and converts to 8 bits by truncation
   (``(x * 255).astype(uint8)``);
3. stretches that picture back to the original size (Pillow, bilinear) and, in OpenCV's 8-bit
   YUV, puts its U and V beside the ORIGINAL picture's Y, then converts back to RGB.

The functions here do exactly that on vidcolor's grey picture (the 8-bit Y the image reader
gives, which for a grey file is its value exactly), so ``vidcolor image`` matches DeOldify's
output to rounding (``tests/test_deoldify_reference.py``). Pure functions: no model, no state.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from vidcolor.models.deoldify.unet import IMAGENET_MEAN, IMAGENET_STD


def grey_8bit(luma: np.ndarray) -> np.ndarray:
    """(H, W) float luma in [0, 1] -> (H, W) uint8, rounded (an 8-bit grey file's own values)."""
    return np.clip(np.rint(luma * 255.0), 0, 255).astype(np.uint8)


def to_square(grey: np.ndarray, side: int) -> np.ndarray:
    """Step 1's resize: (H, W) uint8 -> (side, side) uint8, Pillow bilinear (antialiased when
    shrinking). On a grey picture DeOldify's RGB resize then ``L`` gives these same values."""
    return np.asarray(Image.fromarray(grey, mode="L").resize((side, side), resample=Image.BILINEAR))


def squares(luma: torch.Tensor, side: int) -> torch.Tensor:
    """(B,1,H,W) float luma -> (B,1,side,side) float in [0, 1] on 8-bit steps: what DeOldify's
    network sees, for each frame (on the CPU: Pillow does the resizing)."""
    frames = luma.detach().float().cpu().numpy()[:, 0]
    out = np.stack([to_square(grey_8bit(frame), side) for frame in frames])
    return torch.from_numpy(out).float().div_(255.0)[:, None].to(luma.device)


def normalise(grey: torch.Tensor) -> torch.Tensor:
    """(B,1,h,w) in [0, 1] -> (B,3,h,w) ImageNet-normalised, float32 as fastai computes it."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=grey.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=grey.device).view(1, 3, 1, 1)
    return (grey.float().expand(-1, 3, -1, -1) - mean) / std


def output_8bit(out: torch.Tensor) -> torch.Tensor:
    """Step 2's ending: the network's normalised output (B,3,h,w) -> RGB on 8-bit steps in
    [0, 1]: de-normalised, clamped, truncated to 8 bits as DeOldify's ``astype(uint8)`` does."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=out.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=out.device).view(1, 3, 1, 1)
    rgb = (out.float() * std + mean).clamp(0.0, 1.0)
    return torch.floor(rgb * 255.0) / 255.0


def rgb_tensor_to_8bit(rgb: torch.Tensor) -> np.ndarray:
    """(3,h,w) RGB on 8-bit steps in [0, 1] -> (h,w,3) uint8 (exact: the values are k/255)."""
    return np.rint(rgb.detach().float().cpu().numpy().transpose(1, 2, 0) * 255.0).astype(np.uint8)


def unsquare(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 3's resize: (side, side, 3) uint8 -> (height, width, 3) uint8, Pillow bilinear."""
    return np.asarray(Image.fromarray(rgb, mode="RGB").resize((width, height), resample=Image.BILINEAR))


def keep_original_luma(colour: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Step 3's compose: OpenCV 8-bit YUV, Y from the original, U and V from ``colour``."""
    original = cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2RGB)
    yuv = cv2.cvtColor(original, cv2.COLOR_RGB2YUV)
    yuv[:, :, 1:3] = cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_RGB2YUV)[:, :, 1:3]
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)


def finish_picture(rgb_square: torch.Tensor, grey: np.ndarray) -> np.ndarray:
    """The network's 8-bit square (3,s,s) and the original grey picture (H,W) uint8 -> the
    (H,W,3) uint8 picture DeOldify writes."""
    height, width = grey.shape
    colour = unsquare(rgb_tensor_to_8bit(rgb_square), height, width)
    return keep_original_luma(colour, grey)
