"""vidcolor.palette: a person's colour learnt on one frame, read back by luma and model colour."""

from __future__ import annotations

import pytest
import torch

from vidcolor.errors import InputError
from vidcolor.palette import PaletteConfig, apply_palette, fit_palette

H, W = 32, 48


def two_regions() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left half dark and coloured green-ish by the model, right half bright and neutral; the
    person (target) painted the left half red and left the right half as the model had it."""
    luma = torch.full((1, 1, H, W), 0.8)
    luma[..., : W // 2] = 0.3
    model = torch.zeros(1, 2, H, W)
    model[:, 0, :, : W // 2], model[:, 1, :, : W // 2] = -0.05, -0.08
    target = model.clone()
    target[:, 0, :, : W // 2], target[:, 1, :, : W // 2] = -0.10, 0.25
    return luma, model, target


def test_the_anchor_frame_reads_back_its_own_colour() -> None:
    luma, model, target = two_regions()
    mapped, confidence = apply_palette(fit_palette(luma, model, target), luma, model)
    assert mapped.shape == (1, 2, H, W) and confidence.shape == (1, 1, H, W)
    torch.testing.assert_close(mapped, target, atol=1e-5, rtol=0)
    assert float(confidence.min()) == 1.0


def test_moved_content_keeps_its_colour_and_unseen_colours_keep_the_model() -> None:
    luma, model, target = two_regions()
    palette = fit_palette(luma, model, target)
    # Another frame: the content swapped sides (as after a pan), plus a patch the anchor never had
    # (mid luma, strongly blue in the model's eyes).
    moved_luma, moved_model = luma.flip(-1).clone(), model.flip(-1).clone()
    moved_luma[..., :8, :8] = 0.55
    moved_model[:, 0, :8, :8], moved_model[:, 1, :8, :8] = 0.2, -0.15
    mapped, confidence = apply_palette(palette, moved_luma, moved_model)
    right = (slice(None), slice(None), slice(8, None), slice(W // 2 + 2, None))
    torch.testing.assert_close(mapped[right], target.flip(-1)[right], atol=1e-5, rtol=0)  # red follows the dark region
    assert float(confidence[..., :8, :8].max()) == 0.0  # never seen: no confidence...
    torch.testing.assert_close(mapped[..., :8, :8], moved_model[..., :8, :8])  # ...and the model's own colour


def test_batches_and_config_checks() -> None:
    luma, model, target = two_regions()
    palette = fit_palette(luma, model, target)
    mapped, _ = apply_palette(palette, luma.expand(3, -1, -1, -1), model.expand(3, -1, -1, -1))
    assert mapped.shape == (3, 2, H, W)
    with pytest.raises(ValueError):
        fit_palette(luma.expand(2, -1, -1, -1), model, target)
    with pytest.raises(InputError):
        PaletteConfig(chroma_bins=0)
    with pytest.raises(InputError):
        PaletteConfig(full_share=0.0)


def test_temporal_settings_for_palettes_are_checked() -> None:
    from vidcolor.video.temporal import TemporalConfig

    with pytest.raises(InputError, match="palette_strength"):
        TemporalConfig(palette_strength=1.5)
    with pytest.raises(InputError, match="lost_factor"):
        TemporalConfig(lost_factor=-0.1)
