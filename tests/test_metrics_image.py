"""Image metrics: CIEDE2000 against Sharma, Wu & Dalal (2005) test data, PSNR, colourfulness."""

from __future__ import annotations

import math

import pytest
import torch

from vidcolor.metrics import ciede2000, colourfulness, mean_ciede2000, psnr

# (L1, a1, b1, L2, a2, b2, ΔE00) from Sharma et al.'s table of test data: pairs 1, 7, 9-16
# exercise the hue-angle corner cases (mean hue across 0°, achromatic colours), 17-34 the rest.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_reference_pairs() -> None:
    data = torch.tensor(SHARMA, dtype=torch.float64)
    got = ciede2000(data[:, 0:3], data[:, 3:6])
    assert torch.allclose(got, data[:, 6], atol=5e-5), (got - data[:, 6]).abs().max()


def test_ciede2000_is_symmetric_zero_on_identity_and_works_on_images() -> None:
    data = torch.tensor(SHARMA, dtype=torch.float64)
    assert torch.allclose(ciede2000(data[:, 3:6], data[:, 0:3]), data[:, 6], atol=5e-5)
    lab = torch.randn(2, 3, 5, 7, dtype=torch.float64) * torch.tensor([20.0, 30.0, 30.0]).view(
        1, 3, 1, 1
    ) + torch.tensor([50.0, 0, 0]).view(1, 3, 1, 1)
    assert ciede2000(lab, lab).abs().max() == 0
    shifted = lab.clone()
    shifted[:, 0] += 3.0
    out = ciede2000(lab, shifted)
    assert out.shape == (2, 5, 7) and bool((out > 0).all())


def test_mean_ciede2000_on_rgb() -> None:
    rgb = torch.rand(3, 3, 8, 8)
    assert mean_ciede2000(rgb, rgb).abs().max() < 1e-4
    grey = rgb.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    assert bool((mean_ciede2000(grey, rgb) > 1.0).all())


def test_psnr_known_values() -> None:
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.1)
    assert torch.allclose(psnr(a, b), torch.tensor([20.0, 20.0]), atol=1e-4)
    assert torch.allclose(psnr(a * 255, b * 255, peak=255.0), torch.tensor([20.0, 20.0]), atol=1e-4)
    assert float(psnr(a, a)[0]) == pytest.approx(100.0)


def test_colourfulness_closed_forms() -> None:
    grey = torch.full((1, 3, 6, 6), 0.4)
    assert float(colourfulness(grey)[0]) == pytest.approx(0.0, abs=1e-6)
    red = torch.zeros(1, 3, 6, 6)
    red[:, 0] = 1.0
    # Uniform pure red: σ = 0, μ_rg = 255, μ_yb = 127.5, so M = 0.3·√(255² + 127.5²).
    assert float(colourfulness(red)[0]) == pytest.approx(0.3 * math.hypot(255.0, 127.5), rel=1e-6)
    half = torch.zeros(1, 3, 2, 2)
    half[:, 0, :, 0] = 1.0  # left column red, right column green
    half[:, 1, :, 1] = 1.0
    # rg = ±255 (σ 255, μ 0); yb = 127.5 everywhere (σ 0, μ 127.5).
    assert float(colourfulness(half)[0]) == pytest.approx(255.0 + 0.3 * 127.5, rel=1e-6)
    vivid = torch.rand(1, 3, 16, 16)
    assert float(colourfulness(vivid)[0]) > float(colourfulness(0.5 * vivid + 0.5 * vivid.mean(1, keepdim=True))[0])
