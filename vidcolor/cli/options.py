"""The run settings' command-line options, defined once for ``vidcolor run`` and ``vidcolor batch``.

Each option names the field of vidcolor.settings.RunSettings it sets; ``@setting_options`` adds
them all to a command and hands it one ``SettingValues`` (what was given on the command line),
which applies them to a RunSettings (validated there, so both commands check alike). Every
default is None ("not given"): the schema's own default, or a batch recipe's value, stands.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from vidcolor.errors import InputError


@dataclass(frozen=True)
class SettingOption:
    name: str  # the command's parameter
    section: str  # RunSettings section: run, render, temporal, encode; or anchors
    key: str  # field in that section
    annotation: Any
    option: Any  # typer.Option(...)
    invert: bool = False  # a --no-X flag: given means False


def _opt(*names: str, help: str, metavar: str | None = None, flag: bool = False) -> Any:
    if flag:
        return typer.Option(None, *names, help=help, show_default=False)
    return typer.Option(None, *names, help=help, metavar=metavar, show_default=False)


SETTING_OPTIONS: tuple[SettingOption, ...] = (
    SettingOption(
        "model",
        "run",
        "model",
        Optional[str],
        _opt(
            "--model",
            "-m",
            help="Registered model name, 'default', a vidcolor .safetensors file, an exported .onnx file, or "
            "deoldify-KIND:PATH (KIND artistic, stable, video) or ddcolor:PATH (a DDColor .pth). Default: default.",
        ),
    ),
    SettingOption(
        "render_factor",
        "render",
        "render_factor",
        Optional[int],
        _opt(
            "--render-factor",
            "-r",
            help="Model input size = factor x 16 pixels (4..128); higher is slower and finer. "
            "Default: the model's own.",
        ),
    ),
    SettingOption(
        "batch_size",
        "render",
        "batch_size",
        Optional[int],
        _opt("--batch-size", "-b", help="Frames per model call (memory grows with it). Default: 8."),
    ),
    SettingOption(
        "device", "render", "device", Optional[str], _opt("--device", help="auto, cpu, cuda or cuda:N. Default: auto.")
    ),
    SettingOption(
        "backend",
        "render",
        "backend",
        Optional[str],
        _opt(
            "--backend",
            help="Model backend: auto (fastest measured within tolerance), eager, channels_last, bf16, "
            "fp16 (CUDA), compile, onnx. Default: auto.",
        ),
    ),
    SettingOption(
        "colour_strength",
        "render",
        "colour_strength",
        Optional[float],
        _opt(
            "--colour-strength",
            help="Saturation of the model's colour: 0 grey, 1 as predicted, up to 2 (a person's references and "
            "hints are kept as given). Default: 1.",
        ),
    ),
    SettingOption(
        "codec",
        "encode",
        "codec",
        Optional[str],
        _opt(
            "--codec",
            "-c",
            help="Video encoder: libx264 (default; VP9 for .webm), libx265, ffv1 (lossless), prores_ks, libvpx-vp9.",
        ),
    ),
    SettingOption(
        "crf",
        "encode",
        "crf",
        Optional[int],
        _opt(
            "--crf",
            help="Constant rate factor, as in ffmpeg (lower is better; 0 is lossless for x264/x265/VP9). Default: 18.",
        ),
    ),
    SettingOption(
        "preset",
        "encode",
        "preset",
        Optional[str],
        _opt("--preset", help="Encoder speed preset for x264/x265 (ultrafast ... veryslow). Default: medium."),
    ),
    SettingOption(
        "pix_fmt",
        "encode",
        "pix_fmt",
        Optional[str],
        _opt(
            "--pix-fmt",
            help="Output pixel format. Default: the input's chroma subsampling and bit depth where the codec "
            "allows, else yuv420p.",
        ),
    ),
    SettingOption(
        "no_temporal",
        "temporal",
        "enabled",
        Optional[bool],
        _opt("--no-temporal", help="Colour every frame on its own (no flow-guided smoothing).", flag=True),
        invert=True,
    ),
    SettingOption(
        "temporal_strength",
        "temporal",
        "strength",
        Optional[float],
        _opt(
            "--temporal-strength",
            help="Weight (0..1) of the colour carried from neighbouring frames where the motion is "
            "tracked (1: the fresh prediction only where it is not). Default: 1.",
        ),
    ),
    SettingOption(
        "keyframe_interval",
        "temporal",
        "keyframe_interval",
        Optional[str],
        _opt(
            "--keyframe-interval",
            help="Run the model every N frames and carry colour along the motion between; 'auto' "
            "picks key frames by tracking quality. Default: 1.",
        ),
    ),
    SettingOption(
        "hints",
        "anchors",
        "hints",
        Optional[list[Path]],
        _opt(
            "--hints",
            metavar="DIR|FILE",
            help="Colour hints (repeatable): PNGs of the frame size, transparent except "
            "for painted colour, named by frame (README: anchor pictures). A hint model only.",
        ),
    ),
    SettingOption(
        "reference",
        "anchors",
        "references",
        Optional[list[Path]],
        _opt(
            "--reference",
            metavar="DIR|FILE",
            help="Reference frames (repeatable): full-size colour pictures of frames, "
            "named by frame (000120.png, or as `vidcolor keyframes` names them); each one's colour is carried through "
            "its shot.",
        ),
    ),
)


@dataclass(frozen=True)
class SettingValues:
    """The setting options a command was given (None: not given)."""

    values: dict[str, Any]

    def sections(self) -> dict[str, dict[str, Any]]:
        """{section: {field: value}} of the given run settings (anchors left out)."""
        out: dict[str, dict[str, Any]] = {}
        for opt in SETTING_OPTIONS:
            value = self.values.get(opt.name)
            if value is None or opt.section == "anchors" or (opt.invert and value is False):
                continue
            out.setdefault(opt.section, {})[opt.key] = (not value) if opt.invert else value
        return out

    def anchors(self) -> dict[str, list[Path]]:
        """{"hints": [...], "references": [...]}: the anchor folders or files given."""
        return {opt.key: list(self.values.get(opt.name) or []) for opt in SETTING_OPTIONS if opt.section == "anchors"}


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add every setting option to a command; it receives them as ``settings_given``."""
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != "settings_given"]
    names = {p.name for p in own}
    clash = [o.name for o in SETTING_OPTIONS if o.name in names]
    if clash:
        raise TypeError(f"{func.__name__} already has {clash}")
    added = [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.option, annotation=o.annotation)
        for o in SETTING_OPTIONS
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = SettingValues({o.name: kwargs.pop(o.name, None) for o in SETTING_OPTIONS})
        return func(*args, settings_given=given, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    return wrapper


def check_report_name(report: Path | None) -> None:
    if report is not None and report.suffix.lower() != ".json":
        raise InputError(f"--report {report}: give a .json file name")
