"""Warping error E_warp and ``vidcolor eval-video`` on generated sequences and PyAV-written clips."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.color import rgb_to_chroma, rgb_to_luma, ycbcr_to_rgb
from vidcolor.metrics import ColourConsistency, WarpError, warp_error

H, W, T = 48, 64, 8


def _smooth(seed: int, h: int, w: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, h // 6, w // 6), dtype=np.float32))
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def panning_sequence() -> tuple[torch.Tensor, torch.Tensor]:
    """A textured colour picture panning 2 px a frame: (T,3,H,W) RGB and (T,1,H,W) luma."""
    canvas = 0.15 + 0.7 * _smooth(0, H, W + 2 * T)
    frames = torch.cat([canvas[..., 2 * t : 2 * t + W] for t in range(T)])
    return frames, rgb_to_luma(frames)


def flickering(frames: torch.Tensor, amount: float = 0.06) -> torch.Tensor:
    """Same luma, chroma shifted by ±amount on alternate frames (a per-frame colorizer's flicker)."""
    luma, chroma = rgb_to_luma(frames), rgb_to_chroma(frames)
    sign = torch.tensor([1.0 if t % 2 else -1.0 for t in range(len(frames))]).view(-1, 1, 1, 1)
    return ycbcr_to_rgb(luma, chroma + sign * torch.tensor([amount, -amount]).view(1, 2, 1, 1))


def test_flickering_sequence_has_higher_warp_error_than_a_stable_one() -> None:
    frames, luma = panning_sequence()
    stable = warp_error(list(frames), list(luma))
    flicker = warp_error(list(flickering(frames)), list(luma))
    assert stable < 1e-3
    assert flicker > 5 * stable
    # Flow from the frames' own luma gives the same ordering (the luma is unchanged by the flicker).
    assert warp_error(list(flickering(frames))) > 5 * warp_error(list(frames))


def test_colour_only_warp_error_ignores_luma_and_static_frames_score_zero() -> None:
    frames, luma = panning_sequence()
    still = [frames[0]] * 4
    assert warp_error(still) == pytest.approx(0.0, abs=1e-10)
    grey = luma.expand(-1, 3, -1, -1)
    meter = WarpError(colour_only=True)
    for f in grey:
        meter.update(f)
    assert meter.value == pytest.approx(0.0, abs=1e-10)  # no colour added, nothing to flicker


def test_streaming_meter_and_input_checks() -> None:
    frames, luma = panning_sequence()
    meter = WarpError()
    assert np.isnan(meter.value)
    assert meter.update(frames[0], luma[0]) is None
    pair = meter.update((frames[1].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), luma[1])  # uint8 HWC
    assert pair is not None and pair >= 0 and meter.pairs == 1
    with pytest.raises(ValueError):
        warp_error(list(frames), list(luma[:3]))
    with pytest.raises(ValueError):
        meter.update(frames[2], luma[2, :, :10])


def write_video(path: Path, frames: torch.Tensor) -> Path:
    """Lossless FFV1 in Matroska, so scores reflect the frames and not the codec."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for f in frames:
            rgb = (f.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(format="bgr0")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("evalvideo")
    frames, luma = panning_sequence()
    return {
        "truth": write_video(d / "truth.mkv", frames),
        "gray": write_video(d / "gray.mkv", luma.expand(-1, 3, -1, -1)),
        "flicker": write_video(d / "flicker.mkv", flickering(frames)),
        "short": write_video(d / "short.mkv", frames[:5]),
    }


def run_json(*args: str) -> dict:
    """The scores `eval-video --report FILE.json` writes (the table goes to the terminal)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "scores.json"
        result = CliRunner().invoke(app, ["eval-video", *args, "--report", str(report)])
        assert result.exit_code == 0, result.output
        return json.loads(report.read_text())


def test_eval_video_cli_scores(videos: dict[str, Path]) -> None:
    flicker = run_json(str(videos["flicker"]), "--truth", str(videos["truth"]), "--input", str(videos["gray"]))
    steady = run_json(str(videos["truth"]), "--truth", str(videos["truth"]), "--input", str(videos["gray"]))
    assert flicker["frames"] == T and flicker["flow_from"] == "input"
    assert flicker["ewarp"] > 5 * steady["ewarp"]
    assert flicker["ewarp_colour"] > 5 * steady["ewarp_colour"]
    assert flicker["ewarp_chroma"] > 5 * steady["ewarp_chroma"]
    assert flicker["cdc"] > 2 * steady["cdc"]
    # The truth's own consistency is reported beside PRED's: scoring the truth gives the same twice.
    assert steady["truth_scores"]["ewarp_chroma"] == pytest.approx(steady["ewarp_chroma"])
    assert flicker["truth_scores"]["cdc"] == pytest.approx(steady["cdc"])
    assert steady["psnr"] > 60 and flicker["psnr"] < 40
    assert steady["colourfulness"] == pytest.approx(steady["colourfulness_truth"], rel=0.02)
    alone = run_json(str(videos["flicker"]))
    assert alone["flow_from"] == "pred" and "psnr" not in alone and alone["ewarp"] > 0
    table = CliRunner().invoke(app, ["eval-video", str(videos["flicker"]), "--truth", str(videos["truth"])])
    assert (
        table.exit_code == 0 and "E_warp" in table.stdout and "PSNR" in table.stdout and "truth's own" in table.stdout
    )


@pytest.mark.parametrize("case", ["missing", "not_video", "length"])
def test_eval_video_cli_bad_input_is_a_one_line_error(videos: dict[str, Path], tmp_path: Path, case: str) -> None:
    if case == "missing":
        args = [str(tmp_path / "nope.mp4")]
    elif case == "not_video":
        bad = tmp_path / "notes.mp4"
        bad.write_text("not a video")
        args = [str(bad)]
    else:
        args = [str(videos["short"]), "--truth", str(videos["truth"])]
    result = CliRunner().invoke(app, ["eval-video", *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.output.strip().startswith("error:")
    assert len(result.output.strip().splitlines()) <= 2  # one message (rich may wrap a long path)


def test_colour_distribution_consistency() -> None:
    frames, luma = panning_sequence()
    still = ColourConsistency()
    for _ in range(5):
        still.update(frames[0])
    assert still.value == pytest.approx(0.0, abs=1e-12)
    one = ColourConsistency()
    one.update(frames[0])
    assert np.isnan(one.value)
    steady, pumping = ColourConsistency(), ColourConsistency()
    for i, f in enumerate(frames):
        steady.update(f)
        pumping.update((f * (0.7 if i % 2 else 1.0)).clamp(0, 1))  # colour that pumps frame to frame
    assert pumping.value > 3 * steady.value
    assert 0 <= steady.value <= float(np.log(2))  # JS divergence in nats is bounded by ln 2
    grey = luma.expand(-1, 3, -1, -1)
    meter = WarpError(component="chroma")
    for f in grey:
        meter.update(f)
    assert meter.value == pytest.approx(0.0, abs=1e-10)  # no chroma: nothing to flicker
    with pytest.raises(ValueError):
        WarpError(component="hue")
