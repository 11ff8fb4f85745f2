"""The flow-guided temporal stage on a generated clip: a textured red square moving over a textured
background, then a scene cut to a scene with no red in it. A stand-in model (the oracle) returns
each frame's true chroma, optionally with a per-frame flicker, and records which frames it coloured."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import torch

from vidcolor.errors import InputError
from vidcolor.settings import TemporalConfig, parse_keyframe_interval
from vidcolor.video.frames import FrameBatch
from vidcolor.video.temporal import FlowStage, InlineStage, PerFrameStage, build_stage

H, W = 96, 128
SIDE = 24
CUT = 10  # index of the first frame of the second scene
FRAMES = 16
STEP = (3, 1)  # object motion per frame (x, y), pixels

RED = (-0.10, 0.30)  # CbCr of the object in scene A
BACK_A = (0.06, -0.03)
GREEN = (-0.20, -0.20)  # scene B has no red anywhere: Cr <= 0.02
BACK_B = (-0.15, 0.02)
MAX_CR_B = 0.02


def _texture(seed: int, lo: float, hi: float) -> np.ndarray:
    """Smooth random texture in [lo, hi] (coarse noise upsampled): something flow can track."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 1, H // 8 + 1, W // 8 + 1), dtype=np.float32))
    fine = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bicubic", align_corners=False)[0, 0].numpy()
    fine = (fine - fine.min()) / (fine.max() - fine.min())
    return lo + (hi - lo) * fine


def object_box(t: int) -> tuple[int, int]:
    """Top-left (x, y) of the square in scene-A frame t."""
    return 20 + STEP[0] * t, 30 + STEP[1] * t


@dataclass
class Clip:
    luma: torch.Tensor  # (T,1,H,W) in [0,1]
    chroma: torch.Tensor  # (T,2,H,W): the true CbCr


def make_clip() -> Clip:
    back_a = _texture(1, 0.25, 0.55)
    back_b = _texture(2, 0.5, 0.9)
    obj = _texture(3, 0.7, 0.95)[:SIDE, :SIDE]
    lumas, chromas = [], []
    for t in range(FRAMES):
        c = np.zeros((2, H, W), np.float32)
        if t < CUT:
            y = back_a.copy()
            x0, y0 = object_box(t)
            y[y0 : y0 + SIDE, x0 : x0 + SIDE] = obj
            c[0], c[1] = BACK_A
            c[0, y0 : y0 + SIDE, x0 : x0 + SIDE], c[1, y0 : y0 + SIDE, x0 : x0 + SIDE] = RED
        else:
            y = np.roll(back_b, 2 * (t - CUT), axis=1)  # a slow pan
            c[0], c[1] = BACK_B
            c[0, 10:40, 60:100], c[1, 10:40, 60:100] = GREEN
        lumas.append(torch.from_numpy(y.astype(np.float32))[None])
        chromas.append(torch.from_numpy(c))
    return Clip(torch.stack(lumas), torch.stack(chromas))


class Oracle:
    """Stand-in model: each frame's true chroma, shifted by ±flicker on alternate frames."""

    def __init__(self, clip: Clip, flicker: float = 0.0) -> None:
        self.clip = clip
        self.flicker = flicker
        self.calls: list[int] = []  # frame indices coloured, in order
        self.invocations = 0  # number of (batched) calls

    def __call__(self, luma: torch.Tensor) -> torch.Tensor:
        self.invocations += 1
        out = []
        for frame in luma:
            t = int((self.clip.luma - frame).abs().flatten(1).amax(1).argmin())
            self.calls.append(t)
            out.append(self.clip.chroma[t] + self.flicker * (1 if t % 2 else -1))
        return torch.stack(out)


def frames_of(luma: torch.Tensor, first: int) -> FrameBatch:
    n = len(luma)
    return FrameBatch(first, tuple(range(first, first + n)), Fraction(1, 25), np.zeros((n, 1, 1), np.uint8), luma)


def run_stage(stage, oracle: Oracle, clip: Clip, batch: int = 4, references: dict | None = None) -> torch.Tensor:
    """Push the clip in batches, then flush: every frame's chroma, in order."""
    references = references or {}
    driver = InlineStage(stage, oracle)
    parts = []
    for i in range(0, FRAMES, batch):
        refs = {j - i: references[j] for j in range(i, min(i + batch, FRAMES)) if j in references}
        parts.append(driver.push(clip.luma[i : i + batch], references=refs))
    parts.append(driver.flush())
    out = torch.cat([p for p in parts if len(p)])
    assert out.shape[0] == FRAMES
    return out


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip()


def inner(x0: int, y0: int, margin: int = 5) -> tuple[slice, slice]:
    return slice(y0 + margin, y0 + SIDE - margin), slice(x0 + margin, x0 + SIDE - margin)


@pytest.mark.parametrize("interval", [1, 100, "auto"])
def test_chroma_follows_the_moving_object(clip: Clip, interval) -> None:
    oracle = Oracle(clip)
    out = run_stage(FlowStage(TemporalConfig(keyframe_interval=interval)), oracle, clip)
    t = CUT - 1
    if interval == 100:
        assert 1 <= t and t not in oracle.calls  # this frame's colour can only have come by warping
    x0, y0 = object_box(t)
    rows, cols = inner(x0, y0)
    assert out[t, 1, rows, cols].mean() > 0.25  # red where the object IS now...
    ox, oy = object_box(0)
    assert ox + SIDE <= x0  # (the old and new boxes do not overlap)
    rows, cols = inner(ox, oy)
    assert out[t, 1, rows, cols].mean().abs() < 0.06  # ...and not where it was at the key frame


@pytest.mark.parametrize("interval", [1, 4, "auto"])
def test_scene_cut_resets_and_nothing_bleeds(clip: Clip, interval) -> None:
    oracle = Oracle(clip, flicker=0.01)
    stage = FlowStage(TemporalConfig(keyframe_interval=interval, strength=1.0))
    out = run_stage(stage, oracle, clip, batch=3)  # the cut falls inside a batch
    assert stage.cuts == 1
    assert CUT in oracle.calls  # the new scene's first frame is a key frame
    # The new shot's first frame: its own colour (within the flicker), nothing of the old shot. (Left
    # of the green patch: scene B's patch is painted on the chroma only, so it does not pan with
    # the luma that the flow follows, and colour carried back from the next frames misplaces it.)
    torch.testing.assert_close(out[CUT, :, :, :40], clip.chroma[CUT, :, :, :40], atol=0.011, rtol=0)
    assert out[CUT:, 1].max() <= MAX_CR_B + 0.011  # no red from scene A anywhere after the cut


def test_temporal_blend_reduces_flicker(clip: Clip) -> None:
    flicker = 0.04
    per_frame = run_stage(PerFrameStage(), Oracle(clip, flicker), clip)
    temporal = run_stage(FlowStage(TemporalConfig(strength=0.8)), Oracle(clip, flicker), clip)

    # Frame-to-frame change of the static background (left strip, away from the object).
    def jitter(x: torch.Tensor) -> float:
        return float((x[1:CUT, :, :, :16] - x[: CUT - 1, :, :, :16]).abs().mean())

    assert jitter(per_frame) == pytest.approx(2 * flicker, rel=1e-3)
    assert jitter(temporal) < 0.5 * jitter(per_frame)


def test_keyframe_modes_call_the_model_on_fewer_frames_in_one_batched_call(clip: Clip) -> None:
    every = Oracle(clip)
    run_stage(FlowStage(TemporalConfig()), every, clip, batch=8)
    assert every.calls == list(range(FRAMES))
    assert every.invocations == 2  # one batched call per batch of 8

    fixed = Oracle(clip)
    run_stage(FlowStage(TemporalConfig(keyframe_interval=4)), fixed, clip, batch=8)
    assert fixed.calls == [0, 4, 8, CUT, CUT + 4]  # every 4th frame, restarting at the cut
    assert fixed.invocations == 2

    auto = Oracle(clip)
    stage = FlowStage(TemporalConfig(keyframe_interval="auto", auto_max_gap=5))
    run_stage(stage, auto, clip, batch=8)
    assert auto.calls[0] == 0 and CUT in auto.calls
    assert len(auto.calls) < FRAMES
    gaps = np.diff(auto.calls)
    assert gaps.max() <= 5  # the upper bound on the gap holds
    assert stage.predicted == len(auto.calls)


def test_auto_keyframes_follow_tracking_quality(clip: Clip) -> None:
    # Demanding that almost all of the frame stay tracked turns every frame into a key frame.
    strict = Oracle(clip)
    run_stage(FlowStage(TemporalConfig(keyframe_interval="auto", auto_min_tracked=0.999)), strict, clip)
    lax = Oracle(clip)
    run_stage(FlowStage(TemporalConfig(keyframe_interval="auto", auto_min_tracked=0.0, auto_max_gap=100)), lax, clip)
    assert len(strict.calls) > len(lax.calls)
    assert lax.calls == [0, CUT]


def test_batches_give_the_same_result_as_single_frames(clip: Clip) -> None:
    one = run_stage(FlowStage(TemporalConfig()), Oracle(clip, 0.02), clip, batch=1)
    many = run_stage(FlowStage(TemporalConfig()), Oracle(clip, 0.02), clip, batch=16)
    torch.testing.assert_close(one, many)


def test_a_new_stage_forgets_the_previous_film(clip: Clip) -> None:
    oracle = Oracle(clip)
    InlineStage(FlowStage(TemporalConfig(keyframe_interval=100)), oracle).push(clip.luma[:3])
    driver = InlineStage(FlowStage(TemporalConfig(keyframe_interval=100)), oracle)
    out = torch.cat([driver.push(clip.luma[3:4]), driver.flush()])
    assert oracle.calls == [0, 3]
    torch.testing.assert_close(out[0], clip.chroma[3])


def test_frames_are_planned_and_pushed_in_film_order(clip: Clip) -> None:
    stage = FlowStage(TemporalConfig())
    first = stage.plan(frames_of(clip.luma[:4], 0))
    with pytest.raises(ValueError, match="out of order"):
        stage.plan(frames_of(clip.luma[:4], 9))
    second = stage.plan(frames_of(clip.luma[4:8], 4))
    assert first.keys == (0, 1, 2, 3) and second.first_index == 4
    with pytest.raises(ValueError):  # the second batch cannot be pushed before the first
        stage.push(second.with_prediction(clip.chroma[4:8]))


def test_output_shape_dtype_device_and_empty_batch(clip: Clip) -> None:
    stage = FlowStage(TemporalConfig())
    driver = InlineStage(stage, Oracle(clip))
    assert driver.push(clip.luma[:2]).shape == (0, 2, H, W)  # held for the look-ahead
    out = driver.flush()
    assert out.shape == (2, 2, H, W) and out.dtype == torch.float32 and out.device == clip.luma.device
    assert driver.push(clip.luma[:0]).shape == (0, 2, H, W)
    with pytest.raises(InputError):
        driver.push(clip.luma[:, 0])
    now = FlowStage(TemporalConfig(lookahead=0))  # forward only: nothing is held back
    assert InlineStage(now, Oracle(clip)).push(clip.luma[:2]).shape == (2, 2, H, W) and now.pending == 0


def test_config_values_parse_cleanly() -> None:
    assert TemporalConfig(keyframe_interval="4").keyframe_interval == 4
    assert TemporalConfig(keyframe_interval=" AUTO ").keyframe_interval == "auto"
    assert TemporalConfig(keyframe_interval="1").keyframe_interval == 1
    assert parse_keyframe_interval(7) == 7
    for bad in ("0", "-2", "2.5", "often", "", 0, -1, True):
        with pytest.raises(InputError, match="keyframe-interval"):
            TemporalConfig(keyframe_interval=bad)
    assert TemporalConfig(strength="0.5").strength == 0.5
    for bad in (-0.1, 1.5, "strong", float("nan")):
        with pytest.raises(InputError, match="temporal-strength"):
            TemporalConfig(strength=bad)
    with pytest.raises(InputError):
        TemporalConfig(flow_preset="slowest")
    assert TemporalConfig(match_zooms=[1.5, "2"]).match_zooms == (1.5, 2.0)
    for zooms in ([1.0], [0.0], [5.0], ["near"], 2.0):
        with pytest.raises(InputError, match="match_zooms"):
            TemporalConfig(match_zooms=zooms)
    assert isinstance(build_stage(TemporalConfig(enabled=False)), PerFrameStage)
    assert isinstance(build_stage(TemporalConfig()), FlowStage)


BLUE = (0.30, -0.10)  # a person's colour for the object, unlike the model's red
YELLOW = (-0.30, 0.10)


def reference_for(clip: Clip, t: int, colour: tuple[float, float]) -> torch.Tensor:
    """Frame t's true chroma with the object recoloured: a reference a person painted."""
    ref = clip.chroma[t].clone()
    x0, y0 = object_box(t)
    ref[0, y0 : y0 + SIDE, x0 : x0 + SIDE], ref[1, y0 : y0 + SIDE, x0 : x0 + SIDE] = colour
    return ref[None]


def object_cb(out: torch.Tensor, t: int) -> float:
    x0, y0 = object_box(t)
    rows, cols = inner(x0, y0)
    return float(out[t, 0, rows, cols].mean())


@pytest.mark.parametrize("interval", [1, 100])
def test_reference_colour_is_carried_to_the_moving_object_and_stops_at_the_cut(clip: Clip, interval) -> None:
    out = run_stage(
        FlowStage(TemporalConfig(keyframe_interval=interval)),
        Oracle(clip),
        clip,
        references={0: reference_for(clip, 0, BLUE)},
    )
    torch.testing.assert_close(out[0], reference_for(clip, 0, BLUE)[0])  # its own frame: the reference as it is
    assert object_cb(out, CUT - 1) > 0.25  # blue where the object has moved to, 9 frames on (the model says red)
    x0, y0 = object_box(0)
    assert float(out[CUT - 1, 0, inner(x0, y0)[0], inner(x0, y0)[1]].mean()) < 0.1  # not left where it was
    assert out[CUT:, 0].max() < 0.0  # nothing blue after the cut


def test_two_references_blend_by_distance(clip: Clip) -> None:
    refs = {0: reference_for(clip, 0, BLUE), CUT - 1: reference_for(clip, CUT - 1, YELLOW)}
    out = run_stage(FlowStage(TemporalConfig()), Oracle(clip), clip, references=refs)
    cbs = [object_cb(out, t) for t in range(CUT)]
    assert cbs[0] == pytest.approx(BLUE[0], abs=1e-5) and cbs[-1] == pytest.approx(YELLOW[0], abs=1e-5)
    assert all(a >= b - 1e-4 for a, b in zip(cbs, cbs[1:]))  # from one to the other, never back
    assert YELLOW[0] + 0.15 < cbs[CUT // 2] < BLUE[0] - 0.15  # both count in the middle
    assert cbs[1] > 0.15 and cbs[-2] < -0.15  # the nearer one dominates


def test_a_reference_reaches_back_within_the_lookahead(clip: Clip) -> None:
    refs = {CUT - 1: reference_for(clip, CUT - 1, BLUE)}
    back = run_stage(FlowStage(TemporalConfig()), Oracle(clip), clip, references=refs)
    assert object_cb(back, 2) > 0.2  # frames before the reference take its colour too
    forward_only = run_stage(FlowStage(TemporalConfig(lookahead=0)), Oracle(clip), clip, references=refs)
    assert object_cb(forward_only, 2) < -0.05  # (forward only: the model's red there)


def test_per_frame_stage_uses_a_reference_on_its_own_frame_only(clip: Clip) -> None:
    out = run_stage(PerFrameStage(), Oracle(clip), clip, references={3: reference_for(clip, 3, BLUE)})
    assert object_cb(out, 3) == pytest.approx(BLUE[0], abs=1e-5)
    assert object_cb(out, 4) == pytest.approx(RED[0], abs=1e-5)


def test_frames_held_back_stay_bounded_on_a_long_input(clip: Clip) -> None:
    stage = FlowStage(TemporalConfig(lookahead=6))
    oracle = Oracle(clip)
    scene = clip.luma[:CUT]
    pingpong = torch.cat([scene, scene.flip(0)])  # back and forth: one long shot
    handed, peak = 0, 0
    driver = InlineStage(stage, oracle)
    for _ in range(12):  # 240 frames
        handed += len(driver.push(pingpong))
        peak = max(peak, stage.pending)
    handed += len(driver.flush())
    assert handed == 12 * len(pingpong)
    assert peak <= 2 * 6 + len(pingpong)  # the look-ahead and its chunk, plus the batch pushed
    assert stage.pending == 0


def make_jump_clip() -> tuple[Clip, list[tuple[int, int]]]:
    """One shot: the red square moves, then jumps across the frame at frame 5 (the flow loses it:
    it is newly visible where it lands) and moves on. Returns the clip and each frame's box."""
    back = _texture(1, 0.25, 0.55)
    obj = _texture(3, 0.7, 0.95)[:SIDE, :SIDE]
    boxes = [(10 + 2 * t, 20) if t < 5 else (80 + 2 * (t - 5), 60) for t in range(CUT)]
    lumas, chromas = [], []
    for x0, y0 in boxes:
        y = back.copy()
        y[y0 : y0 + SIDE, x0 : x0 + SIDE] = obj
        c = np.zeros((2, H, W), np.float32)
        c[0], c[1] = BACK_A
        c[0, y0 : y0 + SIDE, x0 : x0 + SIDE], c[1, y0 : y0 + SIDE, x0 : x0 + SIDE] = RED
        lumas.append(torch.from_numpy(y.astype(np.float32))[None])
        chromas.append(torch.from_numpy(c))
    return Clip(torch.stack(lumas), torch.stack(chromas)), boxes


def test_palette_keeps_a_reference_colour_where_the_flow_loses_the_object() -> None:
    jump, boxes = make_jump_clip()

    def run(config: TemporalConfig) -> torch.Tensor:
        ref = jump.chroma[0].clone()
        x0, y0 = boxes[0]
        ref[0, y0 : y0 + SIDE, x0 : x0 + SIDE], ref[1, y0 : y0 + SIDE, x0 : x0 + SIDE] = BLUE
        driver = InlineStage(FlowStage(config), Oracle(jump))
        parts = [
            driver.push(jump.luma[i : i + 4], references={0: ref[None]} if i == 0 else None) for i in range(0, CUT, 4)
        ]
        return torch.cat([p for p in [*parts, driver.flush()] if len(p)])

    def cb(out: torch.Tensor, t: int) -> float:
        rows, cols = inner(*boxes[t])
        return float(out[t, 0, rows, cols].mean())

    with_palette, without = run(TemporalConfig()), run(TemporalConfig(palette_strength=0.0))
    # Before the jump both carry the blue along the flow.
    assert cb(with_palette, 4) > 0.2 and cb(without, 4) > 0.2
    # After it, the object is where no tracked colour reaches: the model's red comes back,
    # unless the palette maps the model's red (at the object's brightness) to the person's blue
    # (the track's own guess, filled in from the surroundings, still counts while it fades).
    assert max(cb(without, t) for t in range(6, CUT)) < 0.05
    assert min(cb(with_palette, t) for t in range(6, CUT)) > max(cb(without, t) for t in range(6, CUT)) + 0.1
    untracked = run(TemporalConfig(lost_factor=0.0))  # a lost track gives way at once: the palette alone
    assert min(cb(untracked, t) for t in range(6, CUT)) > 0.25
    # The background keeps its colour: the palette maps it to itself.
    torch.testing.assert_close(with_palette[CUT - 1, :, :10, :10], jump.chroma[CUT - 1, :, :10, :10], atol=0.02, rtol=0)


def luma_features(luma: torch.Tensor) -> torch.Tensor:
    """Stand-in matching features: each stride-8 cell's histogram over 8 luma bins, unit length
    (what the model's encoder gives in a real run: something that tells the object from the ground)."""
    bins = (luma * 8).long().clamp(0, 7)
    onehot = (bins == torch.arange(8).view(1, 8, 1, 1)).float()
    return torch.nn.functional.normalize(torch.nn.functional.avg_pool2d(onehot, 8), dim=1)


def test_matching_finds_a_reference_colour_where_the_flow_loses_the_object() -> None:
    """With the model's features, a lost object's reference colour is found again by what it is,
    even though the model colours it like the background (tests/test_matching.py: things a
    palette cannot tell apart)."""
    jump, boxes = make_jump_clip()
    grey = Clip(jump.luma, torch.zeros_like(jump.chroma))  # the model: no colour anywhere

    def run(config: TemporalConfig, describe) -> torch.Tensor:
        ref = torch.zeros(1, 2, H, W)
        x0, y0 = boxes[0]
        ref[0, 0, y0 : y0 + SIDE, x0 : x0 + SIDE], ref[0, 1, y0 : y0 + SIDE, x0 : x0 + SIDE] = BLUE
        driver = InlineStage(FlowStage(config, describe), Oracle(grey))
        parts = [driver.push(jump.luma[i : i + 4], references={0: ref} if i == 0 else None) for i in range(0, CUT, 4)]
        return torch.cat([p for p in [*parts, driver.flush()] if len(p)])

    def cb(out: torch.Tensor, t: int) -> float:
        rows, cols = inner(*boxes[t])
        return float(out[t, 0, rows, cols].mean())

    lost = TemporalConfig(lost_factor=0.0)  # a lost track gives way at once
    matched, palette = run(lost, luma_features), run(lost, None)
    assert min(cb(matched, t) for t in range(6, CUT)) > 0.2  # the person's blue, found again
    assert palette is not matched and not torch.equal(matched, palette)
    # The background keeps the reference's (neutral) colour, and matching can be turned off.
    assert float(matched[CUT - 1, :, :10, :10].abs().max()) < 0.02
    off = run(TemporalConfig(lost_factor=0.0, match_strength=0.0), luma_features)
    torch.testing.assert_close(off, palette)
    # The reference frame described at other zooms too: still the person's blue.
    zoomed = run(TemporalConfig(lost_factor=0.0, match_zooms=(0.5, 2.0)), luma_features)
    assert min(cb(zoomed, t) for t in range(6, CUT)) > 0.2


@pytest.mark.parametrize("batch", [1, 5, 8])
def test_colour_turns_gradually_toward_a_mid_shot_anchor(batch: int) -> None:
    """A strongly recoloured reference in the middle of a long shot: no frame before it carries
    more than a quarter of the change, whatever the batching, and after it the colour holds."""
    frames, at = 72, 50
    texture = torch.from_numpy(_texture(3, 0.2, 0.8)).float()
    luma = torch.stack([torch.roll(texture, shifts=t, dims=1)[:64, :96] for t in range(frames)]).unsqueeze(1)
    model_colour = torch.tensor([-0.10, 0.20]).view(1, 2, 1, 1)
    person = torch.tensor([0.25, -0.15]).view(1, 2, 1, 1).expand(1, 2, 64, 96).clone()

    def predict(x: torch.Tensor) -> torch.Tensor:
        return model_colour.expand(len(x), 2, *x.shape[-2:]).clone()

    driver = InlineStage(FlowStage(TemporalConfig()), predict)
    parts = []
    for i in range(0, frames, batch):
        refs = {at - i: person} if i <= at < i + batch else None
        parts.append(driver.push(luma[i : i + batch], references=refs))
    out = torch.cat([p for p in [*parts, driver.flush()] if len(p)])
    cb = out[:, 0].mean((1, 2))
    total = float(cb[at] - cb[0])
    assert total > 0.3  # the anchor's colour arrives
    steps = (cb[1 : at + 1] - cb[:at]).abs()
    assert float(steps.max()) <= 0.25 * total, steps
    assert float((cb[at:] - cb[at]).abs().max()) < 0.05 * total  # and stays after it
