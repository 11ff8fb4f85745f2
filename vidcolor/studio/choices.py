"""A person's choices in the studio, kept as a folder the other commands read unchanged:

    CHOICES/hints/000120.png        hints painted on frame 120 (transparent PNG: `run --hints CHOICES/hints`)
    CHOICES/references/000300.png   frame 300 coloured (`run --reference CHOICES/references`)
    CHOICES/studio.json             the strokes behind each hints picture, to edit them again

For photos, the hints picture of ``photo.jpg`` is ``hints/photo.png`` (``vidcolor image photo.jpg
--hints CHOICES/hints/photo.png``). Every file is written atomically; an upload is checked (a picture,
of the frame's size, not too large) before anything is written.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from vidcolor.errors import InputError
from vidcolor.media.outfile import atomic_write

STUDIO_JSON = "studio.json"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
UPLOAD_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
MAX_STROKES = 2000
MAX_POINTS = 20000


@dataclass(frozen=True)
class Stroke:
    """Dots joined by lines of one colour, in the picture's pixels (a single point is a dot)."""

    colour: str  # "#rrggbb"
    radius: int
    points: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, doc: object, height: int, width: int) -> Stroke:
        """A stroke from the page's JSON, checked (InputError on anything off)."""
        if not isinstance(doc, dict):
            raise InputError("a stroke must be an object with colour, radius and points")
        colour, radius, points = doc.get("colour"), doc.get("radius", 3), doc.get("points")
        if not isinstance(colour, str) or len(colour) != 7 or colour[0] != "#":
            raise InputError(f"stroke colour must be #rrggbb, not {colour!r}")
        try:
            int(colour[1:], 16)
        except ValueError:
            raise InputError(f"stroke colour must be #rrggbb, not {colour!r}") from None
        if not isinstance(radius, int) or isinstance(radius, bool) or not 1 <= radius <= 64:
            raise InputError(f"stroke radius must be 1 to 64 pixels, not {radius!r}")
        if not isinstance(points, list) or not points:
            raise InputError("a stroke needs at least one point")
        parsed = []
        for p in points:
            if (
                not isinstance(p, list)
                or len(p) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in p)
                or not (0 <= p[0] < width and 0 <= p[1] < height)
            ):
                raise InputError(f"stroke point {p!r} is not [x, y] inside the {width}x{height} picture")
            parsed.append((p[0], p[1]))
        return cls(colour.lower(), radius, tuple(parsed))


def parse_strokes(doc: object, height: int, width: int) -> list[Stroke]:
    if not isinstance(doc, list) or len(doc) > MAX_STROKES:
        raise InputError(f"hints must be a list of at most {MAX_STROKES} strokes")
    strokes = [Stroke.parse(d, height, width) for d in doc]
    if sum(len(s.points) for s in strokes) > MAX_POINTS:
        raise InputError(f"at most {MAX_POINTS} stroke points a picture")
    return strokes


def paint_strokes(strokes: list[Stroke], height: int, width: int) -> Image.Image:
    """A hints picture: transparent, with each stroke painted opaque in its colour."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for s in strokes:
        rgba = (int(s.colour[1:3], 16), int(s.colour[3:5], 16), int(s.colour[5:7], 16), 255)
        if len(s.points) > 1:
            draw.line(list(s.points), fill=rgba, width=2 * s.radius - 1, joint="curve")
        for x, y in s.points:
            draw.ellipse((x - s.radius + 1, y - s.radius + 1, x + s.radius - 1, y + s.radius - 1), fill=rgba)
    return layer


def check_upload(data: bytes, height: int, width: int) -> np.ndarray:
    """An uploaded reference -> its RGB pixels (H,W,3) uint8, or InputError (not a picture, too
    large, another size)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"the upload is {len(data) / 1e6:.0f} MB; at most {MAX_UPLOAD_BYTES // 2**20} MiB")
    try:
        with Image.open(io.BytesIO(data)) as probe_img:
            fmt = probe_img.format
            probe_img.verify()
        image = Image.open(io.BytesIO(data))
        if fmt not in UPLOAD_FORMATS:
            raise InputError(f"a reference must be a PNG, JPEG, TIFF, WebP or BMP picture, not {fmt}")
        if image.size != (width, height):
            raise InputError(
                f"the reference is {image.size[0]}x{image.size[1]}; this frame is {width}x{height} (same size needed)"
            )
        return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InputError("the upload is not a picture vidcolor can read (PNG, JPEG, TIFF, WebP or BMP)") from None


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Choices:
    """The choices folder of one studio: hints (strokes, and their pictures) and references."""

    def __init__(self, folder: Path, names: list[str], film: bool) -> None:
        """``names``: the opened files' names (one film, or the photos'); ``film``: frame-numbered."""
        self.folder, self.names, self.film = folder, names, film
        self._lock = threading.Lock()
        self.strokes: dict[int, list[Stroke]] = {}
        self.references: set[int] = set()
        if not film and len({Path(n).stem for n in names}) != len(names):
            raise InputError("two photos share a name (without extension); open them in separate studios")
        self._load()

    @property
    def hints_folder(self) -> Path:
        return self.folder / "hints"

    @property
    def references_folder(self) -> Path:
        return self.folder / "references"

    def hints_path(self, index: int) -> Path:
        stem = f"{index:06d}" if self.film else Path(self.names[index]).stem
        return self.hints_folder / f"{stem}.png"

    def reference_path(self, index: int) -> Path:
        return self.references_folder / f"{index:06d}.png"

    # -- reading ---------------------------------------------------------------------------------
    def _load(self) -> None:
        path = self.folder / STUDIO_JSON
        if not path.is_file():
            return
        try:
            doc = json.loads(path.read_text())
            strokes = {int(k): v for k, v in doc.get("hints", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            raise InputError(f"{path}: not a studio choices file; move it away or choose another --choices") from None
        for index, items in strokes.items():
            self.strokes[index] = [
                Stroke(s["colour"], int(s["radius"]), tuple(tuple(p) for p in s["points"])) for s in items
            ]
        if self.film and self.references_folder.is_dir():
            self.references = {int(p.stem) for p in self.references_folder.glob("*.png") if p.stem.isdigit()}

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "folder": str(self.folder),
                "hints": {str(i): [asdict(s) for s in v] for i, v in self.strokes.items() if v},
                "references": sorted(self.references),
            }

    def anchor_frames(self) -> list[int]:
        with self._lock:
            return sorted({i for i, v in self.strokes.items() if v} | self.references)

    # -- writing ---------------------------------------------------------------------------------
    def set_hints(self, index: int, strokes: list[Stroke], height: int, width: int) -> None:
        """Replace frame ``index``'s strokes; its hints picture follows (removed when none are left)."""
        with self._lock:
            path = self.hints_path(index)
            if strokes:
                path.parent.mkdir(parents=True, exist_ok=True)
                data = _png(paint_strokes(strokes, height, width))
                atomic_write(path, lambda f: f.write(data), overwrite=True)
                self.strokes[index] = strokes
            else:
                path.unlink(missing_ok=True)
                self.strokes.pop(index, None)
            self._save()

    def set_reference(self, index: int, rgb: np.ndarray) -> None:
        if not self.film:
            raise InputError("references are for films; a photo's colour is its hints")
        with self._lock:
            path = self.reference_path(index)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = _png(Image.fromarray(rgb))
            atomic_write(path, lambda f: f.write(data), overwrite=True)
            self.references.add(index)
            self._save()

    def drop_reference(self, index: int) -> None:
        with self._lock:
            self.reference_path(index).unlink(missing_ok=True)
            self.references.discard(index)
            self._save()

    def _save(self) -> None:
        doc = {
            "format": "vidcolor-studio-choices-1",
            "opened": self.names,
            "hints": {str(i): [asdict(s) for s in v] for i, v in sorted(self.strokes.items()) if v},
            "references": sorted(self.references),
        }
        text = (json.dumps(doc, indent=1) + "\n").encode()
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / STUDIO_JSON, lambda f: f.write(text), overwrite=True)
