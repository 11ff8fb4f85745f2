"""vidcolor.matching: an anchor's colour found again by feature similarity."""

from __future__ import annotations

import pytest
import torch

from vidcolor.errors import InputError
from vidcolor.matching import MatchConfig, fit_exemplar, match_colour


def features_of(kinds: torch.Tensor, channels: int = 4) -> torch.Tensor:
    """(h,w) integer kinds -> (1,C,h,w) one-hot unit features (C > the largest kind)."""
    return torch.nn.functional.one_hot(kinds, channels).permute(2, 0, 1).float()[None]


def test_each_thing_gets_its_own_anchor_colour_wherever_it_moves() -> None:
    # Anchor: kind 1 on the left (red), kind 2 on the right (blue), both the same brightness: a
    # palette keyed by luma and model colour could not tell them apart; their features can.
    kinds = torch.zeros(4, 6, dtype=torch.long)
    kinds[:, :3], kinds[:, 3:] = 1, 2
    chroma = torch.zeros(1, 2, 32, 48)
    chroma[:, :, :, :24] = torch.tensor([-0.1, 0.3]).view(1, 2, 1, 1)
    chroma[:, :, :, 24:] = torch.tensor([0.3, -0.1]).view(1, 2, 1, 1)
    exemplar = fit_exemplar(features_of(kinds), chroma)
    colour, confidence = match_colour(exemplar, features_of(kinds.flip(-1)), (32, 48))  # the two swapped sides
    assert colour.shape == (1, 2, 32, 48) and confidence.shape == (1, 1, 32, 48)
    torch.testing.assert_close(colour[..., 4:28, 30:], chroma[..., 4:28, :18], atol=1e-4, rtol=0)
    torch.testing.assert_close(colour[..., 4:28, :18], chroma[..., 4:28, 30:], atol=1e-4, rtol=0)
    assert float(confidence.min()) == 1.0


def test_something_the_anchor_never_showed_gets_no_confidence() -> None:
    kinds = torch.ones(4, 6, dtype=torch.long)
    exemplar = fit_exemplar(features_of(kinds), torch.full((1, 2, 32, 48), 0.2))  # the default gate: 0.3 to 0.6
    unseen = kinds.clone()
    unseen[:2, :2] = 3
    _, confidence = match_colour(exemplar, features_of(unseen), (4, 6))
    assert float(confidence[..., :2, :2].max()) == 0.0 and float(confidence[..., 2:, 2:].min()) == 1.0
    ungated = MatchConfig(min_similarity=None, full_similarity=None)
    _, trusted = match_colour(
        fit_exemplar(features_of(kinds), torch.zeros(1, 2, 32, 48), ungated), features_of(unseen), (4, 6)
    )
    assert float(trusted.min()) == 1.0  # no gate: every position trusts its best matches


def test_a_zoomed_view_of_the_anchor_adds_its_keys() -> None:
    # At the anchor's own scale a small thing (kind 2) is lost in one cell of kind 1; a view at
    # twice the size sees it as a thing of its own, with its own colour.
    chroma = torch.zeros(1, 2, 32, 48)
    chroma[..., 8:16, 16:24] = torch.tensor([0.3, -0.1]).view(1, 2, 1, 1)
    near = torch.ones(8, 12, dtype=torch.long)
    near[2:4, 4:6] = 2
    exemplar = fit_exemplar([features_of(torch.ones(4, 6, dtype=torch.long)), features_of(near)], chroma)
    assert exemplar.keys.shape == (4, 4 * 6 + 8 * 12) and exemplar.values.shape == (2, 4 * 6 + 8 * 12)
    close_up = torch.full((4, 6), 2, dtype=torch.long)
    colour, _ = match_colour(exemplar, features_of(close_up), (4, 6))
    torch.testing.assert_close(colour, torch.tensor([0.3, -0.1]).view(1, 2, 1, 1).expand(1, 2, 4, 6), atol=1e-4, rtol=0)


def test_shapes_and_config_are_checked() -> None:
    kinds = torch.ones(4, 6, dtype=torch.long)
    exemplar = fit_exemplar(features_of(kinds), torch.zeros(1, 2, 32, 48))
    with pytest.raises(ValueError):
        match_colour(exemplar, features_of(kinds, channels=5), (32, 48))
    with pytest.raises(ValueError):
        fit_exemplar(features_of(kinds).expand(2, -1, -1, -1), torch.zeros(2, 2, 32, 48))
    with pytest.raises(ValueError):  # views of one frame have the same channels
        fit_exemplar([features_of(kinds), features_of(kinds, channels=5)], torch.zeros(1, 2, 32, 48))
    with pytest.raises(InputError):
        MatchConfig(temperature=0.0)
    with pytest.raises(InputError):
        MatchConfig(top_k=0)
    with pytest.raises(InputError):
        MatchConfig(min_similarity=0.7, full_similarity=0.6)
    with pytest.raises(InputError):
        MatchConfig(min_similarity=None)  # a gate needs both ends


def test_a_generator_gives_unit_features_at_stride_8_on_any_backend(tiny_model_path) -> None:
    from vidcolor.colorizer import Colorizer
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig

    colorizer = Colorizer(load_model(str(tiny_model_path)), RenderConfig(backend="onnx"), video=True, threads=1)
    assert colorizer.describes  # from the eager model, though the colour runs on ONNX Runtime
    luma = torch.rand(2, 1, 72, 100)  # not multiples of 32: padded, then cropped back
    features = colorizer.describe(luma)
    assert features.shape == (2, 152, 9, 13)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(2, 9, 13))
