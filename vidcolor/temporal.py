"""Temporal stage: what turns per-frame chroma predictions into a film's chroma.

A stage is pushed batches of render-size luma frames in order and hands back the chroma of the
frames it has finished, oldest first (``push``; ``flush`` at the end gives the rest). It decides
which frames the model must colour: it is handed ``predict`` (render luma -> CbCr) and calls it on
the frames it needs, so keyframe mode can skip the model entirely on most frames.

``FlowStage`` (the default) works shot by shot (vidcolor.shots: a cut ends a shot and nothing is
carried across it). Colour is carried along the optical flow both ways in time:

- forward: the previous frame's colour, warped onto this one, is blended with the fresh
  prediction by the per-pixel trust in the warp × ``strength``; between key frames (keyframe
  mode) it is carried alone, newly visible pixels filled from trusted neighbours of similar luma;
- backward: the same, from the next frame, over a look-ahead window of ``lookahead`` frames
  (the film is a file: the stage may wait for the future, but holds at most twice that many
  render-size frames, whatever the film's length). The output is the mean of both directions, so
  a colour change is spread symmetrically instead of lagging behind the picture;
- anchors: a reference (a person's colour for a frame: ``references``), or a hinted frame's
  prediction, replaces the colour at its frame and is carried along the motion through its shot:
  forward to the shot's end, backward up to ``lookahead`` frames. Its weight falls with the
  distance (``reference_reach`` frames) and where the tracking was lost; between two anchors both
  are blended by distance;
- matching: where an anchor's tracked colour was lost, the anchor's colour is found again by what
  things are: the model's encoder features matched to the anchor frame's (vidcolor.matching), so a
  person's choice holds after fast motion, a turn of the camera or a change of scale too. Models
  without matching features (DeOldify's) map the model's colour through the anchor frame's palette
  instead (vidcolor.palette: the anchor's colour for each luma and model colour). Either weighs
  by its confidence and falls with the same distance, so far from any anchor the model takes over
  smoothly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.bilateral import slice_grid
from vidcolor.errors import InputError
from vidcolor.flow import FlowConfig, Motion, to_uint8
from vidcolor.matching import Exemplar, MatchConfig, fit_exemplar, match_colour
from vidcolor.palette import Palette, apply_palette, fit_palette
from vidcolor.shots import Link, ShotConfig, ShotDetector

# The model: render-size luma (B,1,h,w) -> CbCr (B,2,h,w); called as predict(luma, hints) with
# the frames' hint planes (B,3,h,w) when the caller gave any (vidcolor.hints), else predict(luma).
Predict = Callable[..., torch.Tensor]
# The model's matching features: render-size luma (B,1,h,w) -> (B,C,h/8,w/8) unit vectors.
Describe = Callable[[torch.Tensor], torch.Tensor]
AUTO = "auto"


def parse_keyframe_interval(value: int | str) -> int | str:
    """``--keyframe-interval`` value -> a positive int or ``"auto"``; anything else is an InputError."""
    if isinstance(value, bool):
        raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if not text.isdigit():
            raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
        value = int(text)
    if not isinstance(value, int) or value < 1:
        raise InputError(f"--keyframe-interval must be a positive integer or 'auto', not {value!r}")
    return value


@dataclass(frozen=True)
class TemporalConfig:
    # Defaults of strength, flow_preset and photometric_sigma: chosen on the video-tune cut films
    # (``benchmarks/bench_shots.py --tune``; benchmarks/RESULTS.md, "Shots").
    enabled: bool = True
    strength: float = 1.0  # weight of the carried chroma where the flow is fully trusted
    keyframe_interval: int | str = 1  # 1: model on every frame; N; or "auto"
    # Flow: DIS at a fraction of the render size (chroma is low-frequency; see bench_temporal.py).
    flow_preset: str = "medium"
    flow_scale: float = 0.5
    # Trust = fb-consistency × exp(-(luma warp error / photometric_sigma)²), at the flow's size.
    photometric_sigma: float = 0.12
    # Scene cut: luma-histogram distance (0..1) above cut_histogram, or mean confidence below
    # cut_confidence (nothing in the new frame matches the old one).
    cut_histogram: float = 0.45
    cut_confidence: float = 0.15
    # "auto" keyframes: a new key frame when less than auto_min_tracked of the frame is still
    # confidently tracked back to the last key frame, and at least every auto_max_gap frames.
    auto_min_tracked: float = 0.75
    auto_max_gap: int = 12
    # Two-way propagation: frames of look-ahead (0: forward only, no delay), and the distance in
    # frames over which an anchor's (reference's) weight falls to 1/e.
    lookahead: int = 16
    reference_reach: float = 250.0
    # Weight (0..1) of an anchor's palette on the model's colour where its tracked colour is lost
    # (0: the model's own colour there). Chosen on the video-tune cut films (RESULTS.md, "Shots").
    palette_strength: float = 1.0
    # Weight (0..1) of an anchor's colour found by feature matching, where its tracked colour is
    # lost (0: the palette instead), and the matching's dials (vidcolor.matching.MatchConfig).
    match_strength: float = 1.0
    match_temperature: float = MatchConfig.temperature
    match_top_k: int = MatchConfig.top_k
    match_min_similarity: float | None = MatchConfig.min_similarity
    match_full_similarity: float | None = MatchConfig.full_similarity
    # Extra zooms (> 0, not 1) at which the anchor frame is also described, so a thing shown small
    # in the reference is found in a close-up later; () for none. This, the similarity gate and
    # lost_factor were chosen together on the video-tune cut films (RESULTS.md, "Matching at other
    # zooms, with a similarity gate"); lost_factor was 0.7 with palettes, not re-measured there.
    match_zooms: tuple[float, ...] = (1.5, 2.0)
    # A carried anchor's reliability is multiplied by as little as this a frame where the warp is not
    # trusted (its colour there was filled in from neighbours, not tracked); the palette, or the
    # model, takes over there as it drops.
    lost_factor: float = 0.4
    # Where the flow is not trusted (newly visible, occluded, fast motion), the weight (0..1) of
    # colour filled in from trusted neighbours of similar luma against the fresh prediction.
    # Steadier still, but costs a bilateral fill a frame each way: off by default (RESULTS.md).
    untracked_fill: float = 0.0

    def __post_init__(self) -> None:
        # Normalise here so every caller (CLI strings, TOML, Python) gets one validated form.
        object.__setattr__(self, "keyframe_interval", parse_keyframe_interval(self.keyframe_interval))
        try:
            strength = float(self.strength)
        except (TypeError, ValueError):
            raise InputError(f"--temporal-strength must be a number between 0 and 1, not {self.strength!r}") from None
        if not 0.0 <= strength <= 1.0:
            raise InputError(f"--temporal-strength must be between 0 and 1, not {self.strength!r}")
        object.__setattr__(self, "strength", strength)
        FlowConfig(self.flow_preset, self.flow_scale)  # validates both
        if self.photometric_sigma <= 0:
            raise InputError("photometric_sigma must be positive")
        if not (0 <= self.cut_histogram <= 1 and 0 <= self.cut_confidence <= 1 and 0 <= self.auto_min_tracked <= 1):
            raise InputError("cut_histogram, cut_confidence and auto_min_tracked must lie in [0, 1]")
        if self.auto_max_gap < 1:
            raise InputError("auto_max_gap must be at least 1")
        if not isinstance(self.lookahead, int) or self.lookahead < 0:
            raise InputError(f"lookahead must be a whole number of frames >= 0, not {self.lookahead!r}")
        if not self.reference_reach > 0:
            raise InputError(f"reference_reach must be a positive number of frames, not {self.reference_reach!r}")
        if not 0.0 <= self.lost_factor <= 1.0:
            raise InputError(f"lost_factor must lie in [0, 1], not {self.lost_factor!r}")
        if not 0.0 <= self.palette_strength <= 1.0:
            raise InputError(f"palette_strength must lie in [0, 1], not {self.palette_strength!r}")
        if not 0.0 <= self.match_strength <= 1.0:
            raise InputError(f"match_strength must lie in [0, 1], not {self.match_strength!r}")
        _ = self.matching  # validates the matching's dials
        try:
            zooms = tuple(float(z) for z in self.match_zooms)
        except (TypeError, ValueError):
            raise InputError(f"match_zooms must be a list of numbers, not {self.match_zooms!r}") from None
        if any(not 0.0 < z <= 4.0 or z == 1.0 for z in zooms):
            raise InputError(f"match_zooms must lie in (0, 4] and not be 1, not {self.match_zooms!r}")
        object.__setattr__(self, "match_zooms", zooms)

    @property
    def matching(self) -> MatchConfig:
        return MatchConfig(self.match_temperature, self.match_top_k, self.match_min_similarity, self.match_full_similarity)

    @property
    def flow(self) -> FlowConfig:
        return FlowConfig(self.flow_preset, self.flow_scale)

    @property
    def shots(self) -> ShotConfig:
        return ShotConfig(self.flow, self.photometric_sigma, self.cut_histogram, self.cut_confidence)


# Anchors of a pushed batch: index within the batch -> (1,2,h,w) CbCr at render size.
Anchors = Mapping[int, torch.Tensor]


class ChromaStage(Protocol):
    @property
    def predicts_every_frame(self) -> bool:
        """True when ``push`` asks the model for every frame it is given, all at once (so the
        caller may compute that ahead: vidcolor.model_thread)."""
        ...

    def push(
        self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None, references: Anchors | None = None, describe: Describe | None = None
    ) -> torch.Tensor:
        """Take the next frames' (B,1,h,w) render-size luma; return (K,2,h,w) CbCr of the K oldest
        frames now finished, in order (K may be 0, or more than B once the look-ahead fills).

        ``hints`` (B,3,h,w): a person's colour hints for some of the frames (zeros elsewhere): the
        model colours a hinted frame with them, and that colour anchors its shot like a reference.
        ``references``: a person's colour (CbCr) for some frames, used as it is at that frame.
        ``describe``: the model's matching features, to find an anchor's colour again where its
        tracking is lost (None: palettes instead)."""
        ...

    def flush(self) -> torch.Tensor:
        """The chroma of every frame still held back (the film has ended)."""
        ...

    def reset(self) -> None:
        """Forget every frame (a new film, or a seek); frames held back are dropped."""
        ...


def _hinted(hints: torch.Tensor | None) -> set[int]:
    if hints is None:
        return set()
    return set(torch.nonzero(hints[:, 2].flatten(1).amax(1) > 0).flatten().tolist())


class PerFrameStage:
    """No temporal processing: the model colours every frame on its own (``--no-temporal``);
    a reference replaces the colour of its own frame only."""

    predicts_every_frame = True

    def push(
        self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None, references: Anchors | None = None, describe: Describe | None = None
    ) -> torch.Tensor:
        out = (predict(luma) if hints is None else predict(luma, hints)).float()
        for i, chroma in (references or {}).items():
            out[i : i + 1] = chroma.to(out)
        return out

    def flush(self) -> torch.Tensor:
        return torch.zeros(0, 2, 0, 0)

    def reset(self) -> None:
        pass


def _splat(values: torch.Tensor, weight: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted cell sums (pooled, then a 3×3 spatial blur) over the last two dims: numerator, denominator.

    4-D (B,C,h,w) or 5-D (B,C,bins,h,w) inputs (the bins dimension is folded into the channels:
    2-D pooling is much faster than 3-D on the CPU).
    """

    def pool_blur(x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = F.avg_pool2d(x.reshape(shape[0], -1, *shape[-2:]), cell, ceil_mode=True)
        y = F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=False)
        return y.reshape(*shape[:-2], *y.shape[-2:])

    return pool_blur(values * weight), pool_blur(weight)


HALF_SIZE_FILL = 160


def fill_holes(chroma: torch.Tensor, confidence: torch.Tensor, luma: torch.Tensor, cell: int = 8, bins: int = 8, scale: int = 2) -> torch.Tensor:
    """Replace untrusted pixels by the chroma of trusted pixels nearby AND of similar luma.

    Used between key frames, where newly visible pixels have no fresh prediction and their warped
    value would smear the occluder's colour onto them. A bilateral grid (Chen et al. 2007):
    confidence-weighted chroma is splatted into ``cell``-pixel cells × ``bins`` luma bins, blurred,
    and read back trilinearly at each pixel's position and luma, O(pixels). Where no trusted pixel
    of similar luma is near, a luma-blind neighbourhood average, then the frame's mean, are used.

    On frames of at least ``HALF_SIZE_FILL`` rows and columns (real render sizes) the fill is
    computed at 1/``scale`` of the size (chroma averaged by confidence) and upsampled: it only
    replaces untrusted pixels with a smooth neighbourhood colour, and at full size it was most of
    keyframe mode's cost (RESULTS.md, "Speed v2"); the upsampling's blur, a pixel or two, matters
    only on tiny frames. Trusted pixels keep their own chroma.
    """
    h, w = chroma.shape[-2:]
    if scale > 1 and min(h, w) >= HALF_SIZE_FILL:
        weight = F.avg_pool2d(confidence, scale, ceil_mode=True)
        small = F.avg_pool2d(chroma * confidence, scale, ceil_mode=True) / weight.clamp_min(1e-6)
        local = _neighbourhood_colour(small, weight, F.avg_pool2d(luma, scale, ceil_mode=True), cell // scale, bins)
        local = F.interpolate(local, size=(h, w), mode="bilinear", align_corners=False)
    else:
        local = _neighbourhood_colour(chroma, confidence, luma, cell, bins)
    return confidence * chroma + (1.0 - confidence) * local


def _neighbourhood_colour(chroma: torch.Tensor, confidence: torch.Tensor, luma: torch.Tensor, cell: int, bins: int) -> torch.Tensor:
    """At every pixel: the confidence-weighted chroma of nearby pixels of similar luma (bilateral
    grid), else of nearby pixels, else the frame's mean."""
    n, c, h, w = chroma.shape
    index = (luma * bins).long().clamp(0, bins - 1)  # (B,1,h,w)
    onehot = (index == torch.arange(bins, device=luma.device).view(1, bins, 1, 1)).to(chroma.dtype)
    num, den = _splat(chroma.unsqueeze(2), (confidence * onehot).unsqueeze(1), cell)  # (B,C|1,bins,hc,wc)
    # Blur across neighbouring luma bins too: a soft rather than a hard brightness edge.
    num = F.avg_pool3d(num, (3, 1, 1), stride=1, padding=(1, 0, 0), count_include_pad=False)
    den = F.avg_pool3d(den, (3, 1, 1), stride=1, padding=(1, 0, 0), count_include_pad=False)
    picked = slice_grid(torch.cat([num, den], 1), luma)  # (B,C+1,h,w)
    num_px, den_px = picked[:, :c], picked[:, c:]

    blind_num, blind_den = _splat(chroma, confidence, cell)
    blind_num = F.interpolate(blind_num, size=(h, w), mode="bilinear", align_corners=False)
    blind_den = F.interpolate(blind_den, size=(h, w), mode="bilinear", align_corners=False)
    global_mean = (chroma * confidence).sum((2, 3), keepdim=True) / confidence.sum((2, 3), keepdim=True).clamp_min(1e-6)
    local = torch.where(blind_den > 1e-3, blind_num / blind_den.clamp_min(1e-3), global_mean.expand_as(chroma))
    return torch.where(den_px > 1e-3, num_px / den_px.clamp_min(1e-3), local)


@dataclass
class _Track:
    """An anchor's colour carried along the motion: chroma, per-pixel reliability, frames travelled,
    and the anchor frame's exemplar and palette (None: not used)."""

    chroma: torch.Tensor  # (1,2,h,w)
    reliability: torch.Tensor  # (1,1,h,w) in [0,1]
    distance: int
    palette: Palette | None = None
    exemplar: Exemplar | None = None

    @classmethod
    def at(cls, frame: _Frame) -> _Track:
        assert frame.anchor is not None
        return cls(frame.anchor, torch.ones_like(frame.anchor[:, :1]), 0, frame.palette, frame.exemplar)

    def carried(self, motion: Motion, trust: torch.Tensor, luma: torch.Tensor, lost_factor: float) -> _Track:
        """This track moved one frame along ``motion`` onto the frame of ``luma``; its reliability
        falls by up to ``lost_factor`` where the warp is not trusted."""
        moved = motion.warp(torch.cat([self.chroma, self.reliability], 1))
        chroma = fill_holes(moved[:, :2], trust, luma)
        kept = lost_factor + (1.0 - lost_factor) * ((trust - 0.2) / 0.5).clamp(0.0, 1.0)
        return _Track(chroma, moved[:, 2:] * kept, self.distance + 1, self.palette, self.exemplar)


@dataclass
class _Frame:
    """A frame the stage holds until its backward pass can be done."""

    luma: torch.Tensor  # (1,1,h,w)
    link: Link | None  # to the previous frame; None or a cut: the first frame of a shot
    fresh: torch.Tensor | None = None  # the model's prediction (key frames only)
    anchor: torch.Tensor | None = None  # a reference's (or hinted prediction's) chroma
    forward: torch.Tensor | None = None  # colour carried forward (the model's, smoothed)
    track: _Track | None = None  # the last anchor before it in its shot, carried here
    palette: Palette | None = None  # an anchor frame's palette (model colour -> anchor colour)
    exemplar: Exemplar | None = None  # an anchor frame's features and colour (vidcolor.matching)
    features: torch.Tensor | None = None  # its own matching features, once asked for

    @property
    def starts_shot(self) -> bool:
        return self.link is None or self.link.cut


class FlowStage:
    """Shot-wise, two-way, flow-guided chroma propagation with anchors (see the module docstring)."""

    def __init__(self, config: TemporalConfig = TemporalConfig()) -> None:
        self.config = config
        self._detector = ShotDetector(config.shots)
        self.frames = 0  # frames pushed since the last reset
        self.predicted = 0  # of which the model coloured
        self.cuts = 0  # scene cuts detected
        self.reset()

    def reset(self) -> None:
        self._buffer: deque[_Frame] = deque()
        self._last: _Frame | None = None  # the newest frame pushed (it carries the forward state)
        self._prev_u8: np.ndarray | None = None
        self._tracked: torch.Tensor | None = None  # (1,1,h,w): confidence chained since the last key frame
        self._since_key = 0
        self._describe: Describe | None = None  # the last push's; flush uses it too

    @property
    def predicts_every_frame(self) -> bool:
        return self.config.keyframe_interval == 1

    @property
    def pending(self) -> int:
        """Frames pushed whose chroma has not been handed back yet."""
        return len(self._buffer)

    def _is_key(self, link: Link | None) -> bool:
        interval = self.config.keyframe_interval
        if link is None or link.cut:
            self._tracked = None
            return True
        if interval == 1:
            return True
        if interval != AUTO:
            return self._since_key + 1 >= int(interval)
        assert link.back is not None and link.confidence is not None
        tracked = link.confidence if self._tracked is None else link.back.warp(self._tracked) * link.confidence
        self._tracked = tracked
        return float(tracked.mean()) < self.config.auto_min_tracked or self._since_key + 1 >= self.config.auto_max_gap

    def push(
        self, luma: torch.Tensor, predict: Predict, hints: torch.Tensor | None = None, references: Anchors | None = None, describe: Describe | None = None
    ) -> torch.Tensor:
        if luma.dim() != 4 or luma.shape[1] != 1:
            raise InputError(f"temporal stage expects (B,1,h,w) luma, got {tuple(luma.shape)}")
        n = luma.shape[0]
        hinted = _hinted(hints)
        references = references or {}
        self._describe = describe if self.config.match_strength > 0 else None
        small = to_uint8(luma)
        two_way = self.config.lookahead > 0
        # Geometry first (luma only: it never depends on chroma), so one model call serves the batch.
        frames: list[_Frame] = []
        keys: list[int] = []
        prev = self._last.luma if self._last is not None else None
        for i in range(n):
            cur = luma[i : i + 1]
            link = None
            if self._prev_u8 is not None and prev is not None:
                link = self._detector.link(self._prev_u8, small[i], prev, cur, both_ways=two_way)
            if self._is_key(link) or i in hinted:
                keys.append(i)
                self._tracked = torch.ones_like(cur)
                self._since_key = 0
            else:
                self._since_key += 1
            frames.append(_Frame(cur, link))
            self._prev_u8, prev = small[i], cur
        if keys:
            fresh = predict(luma[keys]) if hints is None else predict(luma[keys], hints[keys])
            for j, i in enumerate(keys):
                frames[i].fresh = fresh[j : j + 1].float()
        self.predicted += len(keys)
        self.frames += n

        out: list[torch.Tensor] = []
        # The backward pass runs over every held frame once per `chunk` frames handed back: each
        # frame is passed 1 + lookahead/chunk times, and at most lookahead + chunk are held.
        chunk = max(1, 2 * self.config.lookahead)
        for i, frame in enumerate(frames):
            if i in references:
                frame.anchor = references[i].to(luma.device, torch.float32)
            elif i in hinted:
                frame.anchor = frame.fresh
            self._step_forward(frame)
            self._buffer.append(frame)
            self._last = frame
            if len(self._buffer) >= self.config.lookahead + chunk:
                out.append(self._emit(len(self._buffer) - self.config.lookahead))
        return torch.cat(out) if out else luma.new_zeros((0, 2, *luma.shape[-2:]), dtype=torch.float32)

    def flush(self) -> torch.Tensor:
        if not self._buffer:
            return torch.zeros(0, 2, 0, 0)
        return self._emit(len(self._buffer))

    def _step_forward(self, frame: _Frame) -> None:
        prev = self._last
        if frame.starts_shot or prev is None:
            assert frame.fresh is not None  # a shot's first frame is always a key frame
            self.cuts += int(frame.link is not None)
            frame.forward = frame.fresh
            self._fit_anchor(frame)
            frame.track = _Track.at(frame) if frame.anchor is not None else None
            return
        link = frame.link
        assert link is not None and link.back is not None and link.confidence is not None and prev.forward is not None
        frame.forward = self._blend(frame, link.back.warp(prev.forward), link.confidence)
        self._fit_anchor(frame)
        if frame.anchor is not None:
            frame.track = _Track.at(frame)
        elif prev.track is not None:
            frame.track = prev.track.carried(link.back, link.confidence, frame.luma, self.config.lost_factor)

    def _fit_anchor(self, frame: _Frame) -> None:
        """An anchor frame's exemplar (its features and colour) when the model gives features,
        else its palette, from the model's colour there (smoothed) to the anchor's."""
        if frame.anchor is None or frame.forward is None:
            return
        if self._describe is not None:
            views = [self._features(frame)]
            for zoom in self.config.match_zooms:
                zoomed = F.interpolate(frame.luma, scale_factor=zoom, mode="bilinear", align_corners=False, antialias=zoom < 1)
                views.append(self._describe(zoomed).float())
            frame.exemplar = fit_exemplar(views, frame.anchor, self.config.matching)
        elif self.config.palette_strength > 0:
            frame.palette = fit_palette(frame.luma, frame.forward, frame.anchor)

    def _features(self, frame: _Frame) -> torch.Tensor:
        assert self._describe is not None
        if frame.features is None:
            frame.features = self._describe(frame.luma).float()
        return frame.features

    def _blend(self, frame: _Frame, carried: torch.Tensor, trust: torch.Tensor) -> torch.Tensor:
        """Carried colour and the frame's fresh prediction, by trust; between key frames, carried
        colour alone with its untrusted pixels filled in."""
        if frame.fresh is not None:
            fill = self.config.untracked_fill
            if fill > 0:
                carried = fill_holes(carried, trust, frame.luma)
                return torch.lerp(frame.fresh, carried, self.config.strength * trust + fill * (1.0 - trust))
            return torch.lerp(frame.fresh, carried, self.config.strength * trust)
        return fill_holes(carried, trust, frame.luma)

    def _emit(self, count: int) -> torch.Tensor:
        """Backward pass over every held frame (newest first), then the oldest ``count`` finished."""
        frames = list(self._buffer)
        two_way = self.config.lookahead > 0
        backward: list[torch.Tensor | None] = [None] * len(frames)
        tracks: list[_Track | None] = [None] * len(frames)
        for j in range(len(frames) - 1, -1, -1):
            frame = frames[j]
            nxt = frames[j + 1] if j + 1 < len(frames) and not frames[j + 1].starts_shot else None
            if not two_way:
                continue
            if nxt is None:  # the last frame of its shot, or of the look-ahead
                backward[j] = frame.fresh if frame.fresh is not None else frame.forward
                tracks[j] = _Track.at(frame) if frame.anchor is not None else None
                continue
            link = nxt.link
            assert link is not None and link.forward is not None and link.back_confidence is not None
            later = backward[j + 1]
            assert later is not None
            backward[j] = self._blend(frame, link.forward.warp(later), link.back_confidence)
            if frame.anchor is not None:
                tracks[j] = _Track.at(frame)
            elif tracks[j + 1] is not None:
                tracks[j] = tracks[j + 1].carried(link.forward, link.back_confidence, frame.luma, self.config.lost_factor)  # type: ignore[union-attr]
        done = [self._finish(frames[j], backward[j], tracks[j]) for j in range(count)]
        for _ in range(count):
            self._buffer.popleft()
        return torch.cat(done)

    def _finish(self, frame: _Frame, backward: torch.Tensor | None, later: _Track | None) -> torch.Tensor:
        """The frame's colour: both directions of the model's colour, then its anchors over it."""
        assert frame.forward is not None
        model = frame.forward if backward is None else 0.5 * (frame.forward + backward)
        tracks = [t for t in (frame.track, later) if t is not None]
        if not tracks:
            return model
        reach = self.config.reference_reach
        model = self._anchor_colour(frame, model, tracks)
        weights = [t.reliability * float(np.exp(-t.distance / reach)) for t in tracks]
        if len(tracks) == 1:
            colour, weight = tracks[0].chroma, weights[0]
        else:
            # Between two anchors: the nearer one counts more; each only as far as it is trusted.
            near = [w / (t.distance + 1) for t, w in zip(tracks, weights)]
            colour = (near[0] * tracks[0].chroma + near[1] * tracks[1].chroma) / (near[0] + near[1]).clamp_min(1e-6)
            weight = 1.0 - (1.0 - weights[0]) * (1.0 - weights[1])
        return torch.lerp(model, colour, weight)


    def _anchor_colour(self, frame: _Frame, model: torch.Tensor, tracks: list[_Track]) -> torch.Tensor:
        """The anchors' colour found again anywhere in the frame, tracked or not: by feature
        matching (exemplars), else through palettes; each by its confidence, strength and distance
        (the nearer anchor counts more); where none is confident, the model's colour."""
        mixed = torch.zeros_like(model)
        total = torch.zeros_like(model[:, :1])
        unmapped = torch.ones_like(model[:, :1])
        for track in tracks:
            if track.exemplar is not None and self._describe is not None:
                mapped, confidence = match_colour(track.exemplar, self._features(frame), tuple(model.shape[-2:]))
                strength = self.config.match_strength
            elif track.palette is not None:
                mapped, confidence = apply_palette(track.palette, frame.luma, model)
                strength = self.config.palette_strength
            else:
                continue
            weight = strength * confidence * float(np.exp(-track.distance / self.config.reference_reach))
            near = weight / (track.distance + 1)
            mixed += near * mapped
            total += near
            unmapped *= 1.0 - weight
        if not bool((total > 0).any()):
            return model
        mapped = torch.where(total > 0, mixed / total.clamp_min(1e-12), model)
        return torch.lerp(model, mapped, 1.0 - unmapped)


def build_stage(config: TemporalConfig) -> ChromaStage:
    if not config.enabled:
        return PerFrameStage()
    return FlowStage(config)
