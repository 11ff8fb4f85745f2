"""Temporal stage: what turns per-frame chroma predictions into a film's chroma.

A stage sees each frame batch twice, in order. ``plan`` works out the geometry (optical flow,
scene cuts) from the luma alone and names the frames the model must colour (``FrameBatch.keys``:
every frame, or only key frames and hinted frames in keyframe mode); the model runner colours
exactly those; ``push`` then takes the batch with the model's chroma and hands back the chroma of
the frames it has finished, oldest first, with their frame index (``Finished``; ``flush`` at the
end gives the rest). Planning needs no chroma, so batch k+1 can be planned and coloured while
batch k is pushed.

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
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.bilateral import slice_grid
from vidcolor.errors import InputError
from vidcolor.flow import Motion, to_uint8
from vidcolor.matching import Exemplar, fit_exemplar, match_colour
from vidcolor.palette import Palette, apply_palette, fit_palette
from vidcolor.settings import AUTO, TemporalConfig
from vidcolor.video.frames import FrameBatch
from vidcolor.video.shots import Link, ShotDetector

# The model's matching features: render-size luma (B,1,h,w) -> (B,C,h/8,w/8) unit vectors.
Describe = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Finished:
    """Chroma of consecutive frames a stage is done with, from frame ``first_index`` on."""

    first_index: int
    chroma: torch.Tensor  # (K,2,h,w) CbCr at render size

    def __len__(self) -> int:
        return int(self.chroma.shape[0])


class ChromaStage(Protocol):
    def plan(self, frames: FrameBatch) -> FrameBatch:
        """The next frames (in film order), their geometry worked out: returned with the positions
        of the frames the model must colour (``keys``)."""
        ...

    def push(self, frames: FrameBatch) -> Finished | None:
        """The frames ``plan`` returned, in the same order, with the model's chroma of their keys
        (``predicted``); the chroma of the oldest frames now finished (None: none yet, they are
        held for the look-ahead). A hinted frame's prediction and a reference (``references``)
        anchor the shot: their colour is carried through it."""
        ...

    def flush(self) -> Finished | None:
        """The chroma of every frame still held back (the film has ended)."""
        ...


class PerFrameStage:
    """No temporal processing: the model colours every frame on its own (``--no-temporal``);
    a reference replaces the colour of its own frame only."""

    def plan(self, frames: FrameBatch) -> FrameBatch:
        return frames.with_keys(range(len(frames)))

    def push(self, frames: FrameBatch) -> Finished | None:
        assert frames.predicted is not None and len(frames.keys) == len(frames)
        out = frames.predicted.float().clone()
        for i, chroma in frames.references.items():
            out[i : i + 1] = chroma.to(out)
        return Finished(frames.first_index, out)

    def flush(self) -> Finished | None:
        return None


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


def fill_holes(
    chroma: torch.Tensor, confidence: torch.Tensor, luma: torch.Tensor, cell: int = 8, bins: int = 8, scale: int = 2
) -> torch.Tensor:
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


def _neighbourhood_colour(
    chroma: torch.Tensor, confidence: torch.Tensor, luma: torch.Tensor, cell: int, bins: int
) -> torch.Tensor:
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

    def __init__(self, config: TemporalConfig = TemporalConfig(), describe: Describe | None = None) -> None:
        """``describe``: the model's matching features, to find an anchor's colour again where its
        tracking is lost (None: palettes instead)."""
        self.config = config
        self._describe = describe if config.match_strength > 0 else None
        self._detector = ShotDetector(config.shots)
        self.frames = 0  # frames pushed
        self.predicted = 0  # of which the model coloured
        self.cuts = 0  # scene cuts detected
        self._buffer: deque[_Frame] = deque()  # frames pushed whose chroma is not handed back yet
        self._emitted = 0  # index of the oldest frame not handed back
        self._last: _Frame | None = None  # the newest frame pushed (it carries the forward state)
        self._planned: deque[tuple[int, list[_Frame], set[int]]] = deque()  # planned, not pushed yet (with hinted)
        self._next_plan = 0  # index of the next frame to plan
        self._plan_last: tuple[np.ndarray, torch.Tensor] | None = None  # its predecessor: uint8 and float luma
        self._tracked: torch.Tensor | None = None  # (1,1,h,w): confidence chained since the last key frame
        self._since_key = 0

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

    def plan(self, frames: FrameBatch) -> FrameBatch:
        """Links to the previous frame (flow both ways, cut or not) and the key frames: a shot's
        first frame, every ``keyframe_interval``-th or where tracking fell (auto), hinted frames."""
        if frames.first_index != self._next_plan:
            raise ValueError(f"frames planned out of order: {frames.first_index}, expected {self._next_plan}")
        luma = frames.luma
        hinted = set(frames.hinted)
        small = to_uint8(luma)
        planned: list[_Frame] = []
        keys: list[int] = []
        for i in range(len(frames)):
            cur = luma[i : i + 1]
            link = None
            if self._plan_last is not None:
                prev_u8, prev = self._plan_last
                link = self._detector.link(prev_u8, small[i], prev, cur, both_ways=self.config.lookahead > 0)
            if self._is_key(link) or i in hinted:
                keys.append(i)
                self._tracked = torch.ones_like(cur)
                self._since_key = 0
            else:
                self._since_key += 1
            planned.append(_Frame(cur, link))
            self._plan_last = (small[i], cur)
        self._planned.append((frames.first_index, planned, hinted))
        self._next_plan += len(frames)
        return frames.with_keys(keys)

    def push(self, frames: FrameBatch) -> Finished | None:
        first, planned, hinted = self._planned.popleft()
        if first != frames.first_index or len(planned) != len(frames) or frames.predicted is None:
            raise ValueError(f"frames {frames.first_index}.. pushed, planned {first}.. expected, with predictions")
        for j, i in enumerate(frames.keys):
            planned[i].fresh = frames.predicted[j : j + 1].float()
        self.predicted += len(frames.keys)
        self.frames += len(frames)
        out: list[Finished] = []
        # The backward pass runs over every held frame once per `chunk` frames handed back: each
        # frame is passed 1 + lookahead/chunk times, and at most lookahead + chunk are held.
        chunk = max(1, 2 * self.config.lookahead)
        for i, frame in enumerate(planned):
            if i in frames.references:
                frame.anchor = frames.references[i].to(frames.luma.device, torch.float32)
            elif i in hinted:
                frame.anchor = frame.fresh
            self._step_forward(frame)
            self._buffer.append(frame)
            self._last = frame
            if len(self._buffer) >= self.config.lookahead + chunk:
                out.append(self._emit(len(self._buffer) - self.config.lookahead))
        if not out:
            return None
        return Finished(out[0].first_index, torch.cat([f.chroma for f in out]))

    def flush(self) -> Finished | None:
        if not self._buffer:
            return None
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
                zoomed = F.interpolate(
                    frame.luma, scale_factor=zoom, mode="bilinear", align_corners=False, antialias=zoom < 1
                )
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

    def _emit(self, count: int) -> Finished:
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
                tracks[j] = tracks[j + 1].carried(
                    link.forward, link.back_confidence, frame.luma, self.config.lost_factor
                )  # type: ignore[union-attr]
        done = [self._finish(frames[j], backward[j], tracks[j]) for j in range(count)]
        for _ in range(count):
            self._buffer.popleft()
        finished = Finished(self._emitted, torch.cat(done))
        self._emitted += count
        return finished

    def _finish(self, frame: _Frame, backward: torch.Tensor | None, later: _Track | None) -> torch.Tensor:
        """The frame's colour: both directions of the model's colour, then its anchors over it."""
        assert frame.forward is not None
        model = frame.forward if backward is None else 0.5 * (frame.forward + backward)
        tracks = [(t, self._reach(t, ahead)) for t, ahead in ((frame.track, False), (later, True)) if t is not None]
        if not tracks:
            return model
        model = self._anchor_colour(frame, model, tracks)
        weights = [t.reliability * reach for t, reach in tracks]
        if len(tracks) == 1:
            colour, weight = tracks[0][0].chroma, weights[0]
        else:
            # Between two anchors: the nearer one counts more; each only as far as it is trusted.
            near = [w / (t.distance + 1) for (t, _), w in zip(tracks, weights)]
            colour = (near[0] * tracks[0][0].chroma + near[1] * tracks[1][0].chroma) / (near[0] + near[1]).clamp_min(
                1e-6
            )
            weight = 1.0 - (1.0 - weights[0]) * (1.0 - weights[1])
        return torch.lerp(model, colour, weight)

    def _reach(self, track: _Track, ahead: bool) -> float:
        """How much an anchor ``track.distance`` frames away counts: falling over
        ``reference_reach`` frames; an anchor AHEAD (carried backward in time) also fades in
        linearly over the look-ahead, from nothing at ``lookahead + 1`` frames before it. Every
        frame within the look-ahead of an anchor sees it whatever the batches, the frames before
        never do: the colour changes toward an anchor by 1/(lookahead + 1) of the way a frame,
        never in one step where the look-ahead happened to end."""
        weight = float(np.exp(-track.distance / self.config.reference_reach))
        if ahead:
            weight *= max(0.0, 1.0 - track.distance / (self.config.lookahead + 1))
        return weight

    def _anchor_colour(self, frame: _Frame, model: torch.Tensor, tracks: list[tuple[_Track, float]]) -> torch.Tensor:
        """The anchors' colour found again anywhere in the frame, tracked or not: by feature
        matching (exemplars), else through palettes; each by its confidence, strength and reach
        (``_reach``; the nearer anchor counts more); where none is confident, the model's colour."""
        mixed = torch.zeros_like(model)
        total = torch.zeros_like(model[:, :1])
        unmapped = torch.ones_like(model[:, :1])
        for track, reach in tracks:
            if track.exemplar is not None and self._describe is not None:
                mapped, confidence = match_colour(track.exemplar, self._features(frame), tuple(model.shape[-2:]))
                strength = self.config.match_strength
            elif track.palette is not None:
                mapped, confidence = apply_palette(track.palette, frame.luma, model)
                strength = self.config.palette_strength
            else:
                continue
            weight = strength * confidence * reach
            near = weight / (track.distance + 1)
            mixed += near * mapped
            total += near
            unmapped *= 1.0 - weight
        if not bool((total > 0).any()):
            return model
        mapped = torch.where(total > 0, mixed / total.clamp_min(1e-12), model)
        return torch.lerp(model, mapped, 1.0 - unmapped)


def build_stage(config: TemporalConfig, describe: Describe | None = None) -> ChromaStage:
    """The stage a run's temporal settings ask for (``describe``: see ``FlowStage``)."""
    if not config.enabled:
        return PerFrameStage()
    return FlowStage(config, describe)


class InlineStage:
    """A stage driven with render-size luma alone and the model called inline, in film order: for
    tools and tests that have no decoded frames (the run itself plans a batch ahead instead)."""

    def __init__(self, stage: ChromaStage, predict: Callable[..., torch.Tensor]) -> None:
        self.stage, self.predict = stage, predict
        self._next = 0

    def push(
        self, luma: torch.Tensor, hints: torch.Tensor | None = None, references: dict[int, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Chroma (K,2,h,w) of the frames finished by this push (K may be 0)."""
        if luma.dim() != 4 or luma.shape[1] != 1:
            raise InputError(f"temporal stage expects (B,1,h,w) luma, got {tuple(luma.shape)}")
        if len(luma) == 0:
            return luma.new_zeros((0, 2, *luma.shape[-2:]))
        n = len(luma)
        frames = FrameBatch(
            self._next,
            tuple(range(self._next, self._next + n)),
            Fraction(1, 25),
            np.zeros((n, 1, 1), np.uint8),
            luma,
            hints,
            dict(references or {}),
        )
        self._next += n
        planned = self.stage.plan(frames)
        keys = list(planned.keys)
        if keys:
            predicted = self.predict(luma[keys]) if hints is None else self.predict(luma[keys], hints[keys])
        else:
            predicted = luma.new_zeros((0, 2, *luma.shape[-2:]))
        return _chroma(self.stage.push(planned.with_prediction(predicted.float())), luma)

    def flush(self) -> torch.Tensor:
        return _chroma(self.stage.flush(), None)


def _chroma(finished: Finished | None, like: torch.Tensor | None) -> torch.Tensor:
    if finished is not None:
        return finished.chroma
    if like is None:
        return torch.zeros(0, 2, 0, 0)
    return like.new_zeros((0, 2, *like.shape[-2:]))
