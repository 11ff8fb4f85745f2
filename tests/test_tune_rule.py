"""The decoding tuner's rule (pipelines/tune_temperature.py): most bars met, then accuracy, then colour."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "tune_temperature", Path(__file__).resolve().parents[1] / "pipelines" / "tune_temperature.py"
)
tune = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tune)


def row(name: str, gain: float, low_sat: float, colour: float, blotches: float, films: list[float]) -> dict:
    return {
        "name": name,
        "psnr": 23.0 + gain,
        "gray_psnr": 23.0,
        "low_sat_gain": low_sat,
        "colourfulness": colour,
        "truth_colourfulness": 100.0,
        "blotches": blotches,
        "blotch_bar": 0.005,
        "film_gains": dict(enumerate(films)),
    }


# Shaped like the step-17,400 grid (RESULTS.md): vivid but blotchy, near-grey and safe, gated.
VIVID = row("vivid", 2.6, -1.0, 64.0, 0.019, [1.5, -2.6, 0.8, -0.8, -3.9, 3.6, 3.3, 1.8])
NEAR_GREY = row("near grey", 1.3, 0.9, 18.0, 0.0001, [0.6, 0.0, 0.8, 0.3, 0.0, 1.7, 1.1, 1.7])
GATED = row("gated", 2.7, 0.3, 47.0, 0.0036, [1.3, -0.3, 1.4, -0.1, -1.1, 4.0, 2.9, 3.2])
GATED_PALER = row("gated, paler", 2.5, 0.5, 43.0, 0.0018, [0.7, 0.0, 1.3, -0.2, -0.5, 3.7, 2.6, 3.4])


def test_bars_met_reads_every_bar():
    assert tune.bars_met(VIVID) == {
        "no film clip below grey": False,
        "films +1 dB over grey": False,
        "low-saturation quartile >= grey - 0.2 dB": False,
        "blotches <= half of v2's": False,
        "65% of the truth's colourfulness": False,
    }
    assert sum(tune.bars_met(NEAR_GREY).values()) == 3  # no clip below grey, low-sat, blotches
    assert sum(tune.bars_met(GATED).values()) == 3  # films' mean, low-sat, blotches


def test_a_near_grey_decoding_is_not_preferred_to_a_coloured_one_meeting_as_many_bars():
    rows = [VIVID, NEAR_GREY, GATED, GATED_PALER]
    group, why = tune.feasible(rows)
    assert [r["name"] for r in group] == ["near grey", "gated", "gated, paler"]
    assert why.startswith("3 of 5 bars hold for 3 settings")
    # accuracy first (80% of the best gain: near grey's 1.3 dB is out), then the most colour
    assert tune.choose(rows)["name"] == "gated"


def test_a_setting_meeting_more_bars_wins_even_if_paler():
    better = row("all but colour", 2.2, 0.4, 40.0, 0.002, [0.1, 0.0, 1.2, 0.2, 0.0, 3.0, 2.0, 2.5])
    assert tune.choose([VIVID, GATED, better])["name"] == "all but colour"
    assert tune.feasible([better])[1].startswith("4 of 5 bars hold")
