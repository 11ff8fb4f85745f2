"""One studio: what it was opened with, the person's choices, the frame views and the long jobs.

Everything the web page can do goes through ``Studio``; the server (server.py) only translates
requests. Outputs are written beside the input (``film-colour.mp4``, ``photo-colour.png``) through
the same atomic writers as ``vidcolor run`` and ``vidcolor image``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

from vidcolor.colorizer import Colorizer
from vidcolor.errors import InputError, OutputError
from vidcolor.hints import HintSource
from vidcolor.models.base import ColorModel
from vidcolor.models.registry import load_model, read_registry
from vidcolor.settings import RenderConfig, RunSettings
from vidcolor.studio.choices import Choices, check_upload, parse_strokes
from vidcolor.studio.coverage import coverage, suggest
from vidcolor.studio.jobs import JobRunner
from vidcolor.studio.naming import CHOICES_SUFFIX, PHOTOS_CHOICES
from vidcolor.studio.sources import FilmSource, PhotoSource
from vidcolor.studio.views import FrameViews
from vidcolor.video.anchors import AnchorFiles
from vidcolor.video.shots import ShotConfig

PREVIEW_NAME = "preview.mp4"
MAX_PREVIEW_SECONDS = 10.0
OUTPUT_SUFFIX = "-colour"


@dataclass(frozen=True)
class StudioSettings:
    """How the model renders, as the page sets it (which model: ``Studio.model``, by registered name)."""

    render_factor: int | None = None  # None: the model's default
    colour_strength: float = 1.0

    def __post_init__(self) -> None:
        rf = self.render_factor
        if rf is not None and (isinstance(rf, bool) or not isinstance(rf, int) or not 1 <= rf <= 64):
            raise InputError(f"render factor must be 1 to 64 (or empty for the model's default), not {rf!r}")
        RenderConfig(colour_strength=self.colour_strength)  # its own check: 0..2

    def render(self, **extra: object) -> RenderConfig:
        return RenderConfig(render_factor=self.render_factor, colour_strength=float(self.colour_strength), **extra)


def default_choices_folder(inputs: list[Path]) -> Path:
    """``NAME.studio/`` beside one film or photo; ``vidcolor-studio/`` in the first photo's folder for several."""
    first = inputs[0]
    return first.with_name(first.stem + CHOICES_SUFFIX) if len(inputs) == 1 else first.parent / PHOTOS_CHOICES


def output_path(src: Path) -> Path:
    return src.with_name(src.stem + OUTPUT_SUFFIX + src.suffix)


class Studio:
    def __init__(
        self,
        inputs: list[Path],
        model: ColorModel,
        choices_folder: Path | None = None,
        settings: StudioSettings = StudioSettings(),
    ) -> None:
        self.inputs = inputs
        self.model = model
        # The models the page may choose: the one opened with, and the registered ones (by name
        # only: nothing from the page names a file).
        self.models: dict[str, ColorModel | None] = {model.info.name: model}
        self.models.update({e.name: None for e in read_registry() if e.name not in self.models})
        self.settings = settings
        self._lock = threading.Lock()
        not_pictures = [p for p in inputs if not _is_picture(p)]
        self.film = len(inputs) == 1 and bool(not_pictures)
        if not_pictures and not self.film:
            raise InputError(f"the studio opens one film, or pictures; {not_pictures[0].name} is not a picture")
        colorizer = self._colorizer()
        if self.film:
            self.source: FilmSource | PhotoSource = FilmSource(inputs[0], colorizer.prepare, ShotConfig())
        else:
            self.source = PhotoSource(inputs)
        self.choices = Choices(choices_folder or default_choices_folder(inputs), self.source.names, self.film)
        self.views = FrameViews(self.source, colorizer, self.choices)
        self.jobs = JobRunner()
        self.source.start()

    def _colorizer(self) -> Colorizer:
        # Single frames on the request path: the eager model starts at once (no ONNX export).
        return Colorizer(self.model, self.settings.render(backend="eager"), video=self.film)

    def close(self) -> None:
        self.jobs.close()
        self.source.close()

    # -- the page's questions --------------------------------------------------------------------
    def project(self) -> dict:
        h, w = self.source.size(0) if self.source.count() else (0, 0)
        return {
            "kind": "film" if self.film else "photos",
            "names": self.source.names,
            "size": [w, h],
            "takes_hints": self.model.info.takes_hints,
            "model": self.model.info.name,
            "models": list(self.models),
            "scan": self.source.snapshot(),
            "choices": self.choices.snapshot(),
            "settings": {
                "render_factor": self.settings.render_factor,
                "colour_strength": self.settings.colour_strength,
            },
            "outputs": [output_path(p).name for p in self.inputs],
            "job": self.jobs.state(),
        }

    def coverage(self) -> dict:
        if not self.film:
            return {"cover": [], "suggestions": []}
        starts, follow = self.source.follow()
        cover = coverage(starts, follow, self.choices.anchor_frames(), RunSettings().temporal.lookahead)
        return {
            "cover": [round(c, 3) for c in cover],
            "suggestions": [s.__dict__ for s in suggest(starts, follow, cover)],
        }

    # -- the page's changes ----------------------------------------------------------------------
    def set_hints(self, index: int, doc: object) -> None:
        if not self.model.info.takes_hints:
            raise InputError(f"model {self.model.info.name!r} takes no colour hints")
        height, width = self.source.size(self._index(index))
        self.choices.set_hints(index, parse_strokes(doc, height, width), height, width)

    def set_reference(self, index: int, data: bytes) -> None:
        if not self.film:
            raise InputError("references are for films; colour a photo with hints")
        height, width = self.source.size(self._index(index))
        rgb = check_upload(data, height, width)
        self.views.check_reference(index, rgb)
        self.choices.set_reference(index, rgb)

    def promote(self, index: int) -> None:
        """Frame ``index`` as the page shows it with the choices (the model + hints) becomes its reference."""
        if not self.film:
            raise InputError("references are for films; colour a photo with hints")
        self.choices.set_reference(self._index(index), self.views.rgb(index, "choices"))

    def drop_reference(self, index: int) -> None:
        self.choices.drop_reference(self._index(index))

    def change_settings(self, doc: object) -> None:
        """The page's settings: model (a name of ``models``), render_factor, colour_strength."""
        if not isinstance(doc, dict) or set(doc) - {"model", "render_factor", "colour_strength"}:
            raise InputError("settings are model, render_factor and colour_strength")
        doc = dict(doc)
        name = doc.pop("model", self.model.info.name)
        if name not in self.models:
            raise InputError(f"unknown model {name!r}; choose one of {', '.join(self.models)}")
        if self.jobs.busy():
            raise InputError("a render is running: change the settings when it is done")
        settings = replace(self.settings, **doc)
        model = self.models[name] or load_model(name)
        with self._lock:
            self.models[name] = model
            self.model, self.settings = model, settings
            self.views.colorizer = self._colorizer()

    def _index(self, index: int) -> int:
        if not 0 <= index < self.source.count():
            raise InputError(f"frame {index} does not exist (or is not scanned yet)")
        return index

    # -- long work -------------------------------------------------------------------------------
    def _anchors(self) -> AnchorFiles:
        has = self.choices.anchor_frames()
        hints = [self.choices.hints_folder] if any(i in self.choices.strokes for i in has) else []
        refs = [self.choices.references_folder] if self.choices.references else []
        return AnchorFiles.from_paths(hints=hints, references=refs)

    @property
    def preview_path(self) -> Path:
        return self.choices.folder / PREVIEW_NAME

    def start_preview(self, start: int, seconds: float) -> bool:
        """Render ``seconds`` of the film from frame ``start`` with the temporal stage, for the page."""
        if not self.film:
            raise InputError("a preview is for films; a photo's view is its preview")
        if not 0.0 < seconds <= MAX_PREVIEW_SECONDS:
            raise InputError(f"a preview is up to {MAX_PREVIEW_SECONDS:.0f} seconds")
        from vidcolor.media.excerpt import FrameRange
        from vidcolor.media.plan import EncodeConfig
        from vidcolor.video.run import colorize_video

        rate = float(self.source.media.video.frame_rate or 25)
        span = FrameRange(self._index(start), start + max(1, round(seconds * rate)))
        settings = RunSettings(render=self.settings.render(), encode=EncodeConfig(preset="veryfast"))
        anchors, dst = self._anchors(), self.preview_path
        dst.parent.mkdir(parents=True, exist_ok=True)

        def work(progress, should_stop) -> str:
            report = colorize_video(
                self.inputs[0], dst, self.model, settings, anchors=anchors, overwrite=True,
                progress=progress, should_stop=should_stop, frames=span,
            )  # fmt: skip
            return f"preview of frames {span.start}-{span.start + report.frames - 1} ready"

        return self.jobs.start("preview", work)

    def start_render(self, overwrite: bool = False) -> bool:
        """Colour everything opened, beside the inputs (atomically); one job at a time."""
        for src in self.inputs:
            dst = output_path(src)
            if dst.exists() and not overwrite:
                raise OutputError(f"{dst.name} already exists beside {src.name}; confirm to replace it")
        return self.jobs.start("render", self._render_film if self.film else self._render_photos)

    def _render_film(self, progress, should_stop) -> str:
        from vidcolor.video.run import colorize_video

        src, dst = self.inputs[0], output_path(self.inputs[0])
        settings = RunSettings(render=self.settings.render())
        report = colorize_video(
            src, dst, self.model, settings, anchors=self._anchors(), overwrite=True,
            progress=progress, should_stop=should_stop,
        )  # fmt: skip
        return f"{dst.name}: {report.frames} frames written"

    def _render_photos(self, progress, should_stop) -> str:
        from vidcolor.stills import colorize_image_file
        from vidcolor.video.run import RunCancelled

        colorizer = Colorizer(self.model, self.settings.render(), video=False)
        for i, src in enumerate(self.inputs):
            if should_stop():
                raise RunCancelled(f"stopped after {i} of {len(self.inputs)} pictures")
            hints_path = self.choices.hints_path(i)
            hints = HintSource(picture=hints_path) if i in self.choices.strokes and hints_path.is_file() else None
            result = colorize_image_file(src, output_path(src), colorizer, overwrite=True, hints=hints)
            if not result.ok:
                raise OutputError(result.error or f"{src.name} could not be coloured")
            progress(i + 1, len(self.inputs))
        return f"{len(self.inputs)} picture(s) written beside the originals"


def _is_picture(path: Path) -> bool:
    from vidcolor.media.images import sniff_format

    try:
        sniff_format(path)
        return True
    except InputError:
        return False
