"""Sample grids shown while training (Colorify's habit): grey | prediction | truth per row."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcolor.color import compose_rgb, luma_to_lightness, rgb_to_luma


@torch.no_grad()
def colorize_rgb_batch(
    model: torch.nn.Module, rgb: torch.Tensor, device: torch.device, temperature: float | None = None
) -> torch.Tensor:
    luma = rgb_to_luma(rgb)
    was_training = model.training
    model.eval()
    ab = model(luma_to_lightness(luma.to(device)), temperature=temperature).float().cpu()
    model.train(was_training)
    return compose_rgb(luma, ab)


def grid_image(rows: list[list[torch.Tensor]]) -> np.ndarray:
    """Rows of (3,H,W) tensors in [0,1] -> one uint8 RGB array with 2-pixel white gutters."""
    lines = []
    for row in rows:
        cells = []
        for t in row:
            cells.append(t.permute(1, 2, 0).numpy())
            cells.append(np.ones((t.shape[1], 2, 3), np.float32))
        lines.append(np.concatenate(cells[:-1], axis=1))
        lines.append(np.ones((2, lines[-1].shape[1], 3), np.float32))
    return (np.concatenate(lines[:-1], axis=0) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def write_png(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)


def save_sample_grid(model: torch.nn.Module, rgb: torch.Tensor, path: Path, device: torch.device) -> None:
    pred = colorize_rgb_batch(model, rgb, device)
    gray = rgb_to_luma(rgb).expand(-1, 3, -1, -1)
    write_png(grid_image([[g, p, t] for g, p, t in zip(gray, pred, rgb)]), path)
