"""The settings of a run, in one schema: what ``vidcolor run``, ``vidcolor batch``, the batch
recipes (TOML) and the run report share, each part validated where it is built.

- ``RenderConfig``: the model's side (render factor, batch, device, backend, hint spreading);
- ``TemporalConfig``: the temporal stage (shots, flow, key frames, anchors' reach, matching);
- ``EncodeConfig``: the encoder (vidcolor.media.plan, the I/O layer's own; re-used here);
- ``RunSettings``: the three, with the model, as one value: ``from_sections`` reads a recipe's
  tables, ``override`` applies command-line options, ``to_dict`` is what reports and job stores keep.
This module imports neither torch nor OpenCV: a command can build its settings before loading them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from vidcolor.errors import InputError
from vidcolor.media.plan import EncodeConfig

if TYPE_CHECKING:
    from vidcolor.flow import FlowConfig
    from vidcolor.matching import MatchConfig
    from vidcolor.video.shots import ShotConfig

AUTO = "auto"
POSTPROCESS = ("native", "vidcolor")
DTYPES = ("float32", "bfloat16", "float16")


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
    # (vidcolor.matching.MatchConfig's defaults, chosen there.)
    match_temperature: float = 0.05
    match_top_k: int = 8
    match_min_similarity: float | None = 0.3
    match_full_similarity: float | None = 0.6
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
        _ = self.flow  # validates the preset and the scale
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

    # The stage's own configurations, built on demand (their modules import torch and OpenCV,
    # which a settings object does not need).
    @property
    def matching(self) -> MatchConfig:
        from vidcolor.matching import MatchConfig

        return MatchConfig(
            self.match_temperature, self.match_top_k, self.match_min_similarity, self.match_full_similarity
        )

    @property
    def flow(self) -> FlowConfig:
        from vidcolor.flow import FlowConfig

        return FlowConfig(self.flow_preset, self.flow_scale)

    @property
    def shots(self) -> ShotConfig:
        from vidcolor.video.shots import ShotConfig

        return ShotConfig(self.flow, self.photometric_sigma, self.cut_histogram, self.cut_confidence)


@dataclass(frozen=True)
class HintSpread:
    """How far a hint reaches after the model has run: the thing it is on, not the scene.

    Every pixel takes the correction of its geodesically nearest hint (vidcolor.geodesic: a path's
    length plus ``edge`` times the brightness it crosses, over the luma with its texture smoothed
    away), weighted 1 / (1 + (distance / reach)**4); the model's own answer to the hints (its
    change from the automatic colour) is bounded by the same weight. So a hint fills its region,
    and an object's outline ends it. Chosen on held-out training-corpus pictures by
    ``pipelines/tune_hint_spread.py`` (benchmarks/RESULTS.md), never on the validation set.
    """

    # Chosen by pipelines/tune_hint_spread.py (v2, 200 held-out corpus pictures, benchmarks/RESULTS.md):
    # the best PSNR at 10 points among the settings local enough (edge / reach >= 12).
    # Distance at which a hint's weight halves, in picture sizes along a flat region. The tuning
    # gained with reach up to this (a hint fills its whole region); outlines crossed still end it.
    reach: float = 25.6
    edge: float = 307.2  # distance added per unit of brightness crossed (a 0.25 step adds edge / 4)
    smooth: float = 0.2  # brightness differences the guide's edge-preserving smoothing flattens (0: none)
    rounds: int = 3  # sweeps of the distance transform: more let a region's paths bend more

    def __post_init__(self) -> None:
        if not self.reach > 0 or self.edge < 0 or self.smooth < 0 or self.rounds < 1:
            raise ValueError("HintSpread needs reach > 0, edge >= 0, smooth >= 0 and rounds >= 1")


@dataclass(frozen=True)
class RenderConfig:
    render_factor: int | None = None  # None: the model's default (video or image)
    batch_size: int = 8
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | bfloat16 | float16
    backend: str = "auto"  # auto | eager | channels_last | bf16 | fp16 | compile | onnx (vidcolor.backends)
    hint_spread: HintSpread | None = field(default_factory=HintSpread)  # None: hints act only through the model
    # Stills from a DeOldify model: "native" finishes them exactly as DeOldify does (8-bit, its
    # OpenCV YUV compose); "vidcolor" composes the chroma with the picture's own luma at its depth.
    deoldify_postprocess: str = "native"
    # The model's colour scaled by this (0: grey, 1: as predicted, up to 2: twice as saturated), a
    # restorer's first dial; a person's colour (references, hints) is never scaled.
    colour_strength: float = 1.0

    def __post_init__(self) -> None:
        try:
            strength = float(self.colour_strength)
        except (TypeError, ValueError):
            raise InputError(f"--colour-strength must be a number from 0 to 2, not {self.colour_strength!r}") from None
        if isinstance(self.colour_strength, bool) or not 0.0 <= strength <= 2.0:
            raise InputError(f"--colour-strength must be a number from 0 to 2, not {self.colour_strength!r}")
        object.__setattr__(self, "colour_strength", strength)
        if self.render_factor == 0 and not isinstance(self.render_factor, bool):  # recipes have no null
            object.__setattr__(self, "render_factor", None)
        if self.render_factor is not None and (
            not isinstance(self.render_factor, int)
            or isinstance(self.render_factor, bool)
            or not 4 <= self.render_factor <= 128
        ):
            raise InputError(f"--render-factor {self.render_factor} is out of range (4..128)")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size} must be at least 1")
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype {self.dtype!r}: {', '.join(DTYPES)}")
        if self.deoldify_postprocess not in POSTPROCESS:
            raise InputError(f"--postprocess {self.deoldify_postprocess!r}: {' or '.join(POSTPROCESS)}")


@dataclass(frozen=True)
class RunSettings:
    """Everything that shapes a film's (or a picture's) colour and encoding, but the files."""

    model: str = "default"  # registered name, "default", a weight file, or FAMILY:PATH
    render: RenderConfig = field(default_factory=RenderConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InputError(f"model must be a name or a path, not {self.model!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def override(self, values: dict[str, dict[str, Any]]) -> RunSettings:
        """These settings with ``{section: {field: value}}`` replaced (``None`` values: not given);
        every part validated again. Sections: run (the model), render, temporal, encode."""
        parts: dict[str, Any] = {"render": self.render, "temporal": self.temporal, "encode": self.encode}
        model = self.model
        for section, table in values.items():
            given = {k: v for k, v in table.items() if v is not None}
            if section == "run":
                model = given.pop("model", model)
                _unknown(section, given)
            elif section in parts:
                known = {f.name for f in fields(parts[section])}
                _unknown(section, {k: v for k, v in given.items() if k not in known})
                parts[section] = _rebuild(parts[section], given, section)
            else:
                raise InputError(f"unknown settings section [{section}] (known: run, render, temporal, encode)")
        return RunSettings(model=model, **parts)

    @classmethod
    def from_sections(cls, values: dict[str, dict[str, Any]]) -> RunSettings:
        return cls().override(values)


def _unknown(section: str, extra: dict[str, Any]) -> None:
    if extra:
        raise InputError(f"unknown setting(s) in [{section}]: {', '.join(sorted(extra))}")


def _rebuild(part: Any, given: dict[str, Any], section: str) -> Any:
    """``replace`` with the types checked against the defaults (TOML and JSON give no schema)."""
    current = asdict(part)
    for key, value in given.items():
        default = current[key]
        if isinstance(default, bool) != isinstance(value, bool) and default is not None:
            raise InputError(f"[{section}] {key} = {value!r}: expected {type(default).__name__}")
        if isinstance(default, tuple) and isinstance(value, list):
            given[key] = tuple(value)
    try:
        return replace(part, **given)
    except TypeError as exc:
        raise InputError(f"[{section}]: {exc}") from None
