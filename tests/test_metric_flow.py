"""FlowConfig's DIS overrides (used by the E_warp metric's flow) and its text form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcolor.errors import InputError
from vidcolor.flow import FlowConfig, FlowEstimator
from vidcolor.metrics import METRIC_FLOW


def test_parse_round_trips_and_rejects_bad_specs() -> None:
    for spec in ("medium@1", "fast@0.5", "medium@1:f0", "ultrafast@0.25:f1:s3:v7"):
        assert str(FlowConfig.parse(spec)) == spec
    assert FlowConfig.parse("medium@1:f0:v7") == FlowConfig("medium", 1.0, finest_scale=0, refine_iterations=7)
    assert FlowConfig.parse(str(METRIC_FLOW)) == METRIC_FLOW
    for bad in ("medium@x", "slow@1", "medium@1:q3", "medium@1:f", "medium@2"):
        with pytest.raises(InputError):
            FlowConfig.parse(bad)
    with pytest.raises(InputError):
        FlowConfig("medium", 1.0, patch_stride=0)


def _textured_pair(shift: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    coarse = torch.from_numpy(rng.random((1, 1, 12, 16), dtype=np.float32))
    canvas = torch.nn.functional.interpolate(coarse, size=(96, 128 + shift), mode="bicubic", align_corners=False)
    canvas = (canvas.clamp(0, 1)[0, 0] * 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(canvas[:, :128]), np.ascontiguousarray(canvas[:, shift : shift + 128])


def test_overrides_reach_dis_and_full_resolution_search_recovers_a_pan() -> None:
    a, b = _textured_pair(3)  # b is a shifted 3 px left: the flow a->b is -3 px in x
    for config in (
        FlowConfig("medium", 1.0),
        FlowConfig("medium", 1.0, finest_scale=0, patch_stride=2, refine_iterations=3),
    ):
        flow = FlowEstimator(config)(a, b)
        inner = flow[16:-16, 16:-16]
        assert np.median(inner[..., 0]) == pytest.approx(-3.0, abs=0.3)
        assert np.median(np.abs(inner[..., 1])) < 0.3
    coarse = FlowEstimator(FlowConfig("medium", 1.0))._dis
    fine = FlowEstimator(FlowConfig("medium", 1.0, finest_scale=0, patch_stride=2, refine_iterations=3))._dis
    assert (fine.getFinestScale(), fine.getPatchStride(), fine.getVariationalRefinementIterations()) == (0, 2, 3)
    assert coarse.getFinestScale() != 0
