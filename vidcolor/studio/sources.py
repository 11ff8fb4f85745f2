"""What a studio was opened with: one film, or a list of photos, addressed by index only.

``FilmSource`` scans the film once in the background (every frame's timestamp, the shots as the
temporal stage finds them, and how well each frame follows the one before: the flow's trust), and
decodes any scanned frame on demand by seeking. ``PhotoSource`` reads its pictures as the image
command does. The page names frames and photos by number: no path ever comes from it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.flow import to_uint8
from vidcolor.media.images import read_image
from vidcolor.media.probe import MediaInfo, open_input, primary_video_stream, probe
from vidcolor.media.reader import VideoReader, frame_luma_samples, normalise_luma
from vidcolor.video.shots import ShotConfig, ShotDetector

CACHED_FRAMES = 24  # full-size frames kept for scrubbing back and forth


@dataclass
class ScanState:
    """What the background scan of a film has found so far (read under the source's lock)."""

    pts: list[int] = field(default_factory=list)  # every frame's timestamp, in decoding order
    shot_starts: list[int] = field(default_factory=list)  # first frame of each shot
    follow: list[float] = field(default_factory=list)  # per frame: mean flow trust from the frame before (0 at a cut)
    done: bool = False
    error: str | None = None


class FilmSource:
    """One film: probed at once, scanned in the background, frames decoded on demand."""

    kind = "film"

    def __init__(self, path: Path, prepare: Callable[[torch.Tensor], torch.Tensor], shots: ShotConfig) -> None:
        """``prepare``: full-size luma (B,1,H,W) -> luma at the model's render size (the size the
        run finds shots at, so the studio's shots are the run's)."""
        self.path = path
        self.media: MediaInfo = probe(path)
        self.matrix = self.media.video.matrix
        self.scan = ScanState()
        self._lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._container: av.container.InputContainer | None = None
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._prepare, self._shots = prepare, shots
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, name="vidcolor-studio-scan", daemon=True)

    @property
    def names(self) -> list[str]:
        return [self.path.name]

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of frame ``index`` (every frame's)."""
        return self.media.video.height, self.media.video.width

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._decode_lock:
            if self._container is not None:
                self._container.close()
                self._container = None

    def count(self) -> int:
        with self._lock:
            return len(self.scan.pts)

    def snapshot(self) -> dict:
        """The scan so far, for the page."""
        with self._lock:
            s = self.scan
            return {
                "frames": len(s.pts),
                "expected": self.media.video.estimated_frames,
                "done": s.done,
                "error": s.error,
                "shot_starts": list(s.shot_starts),
                "follow": [round(f, 3) for f in s.follow],
                "times": [float(p * self.media.video.time_base) for p in s.pts],
            }

    def follow(self) -> tuple[list[int], list[float]]:
        with self._lock:
            return list(self.scan.shot_starts), list(self.scan.follow)

    # -- the scan --------------------------------------------------------------------------------
    def _scan(self) -> None:
        detector = ShotDetector(self._shots)
        prev_u8: np.ndarray | None = None
        prev: torch.Tensor | None = None
        try:
            with VideoReader(self.path, self.media.video, batch_size=8) as reader:
                for batch in reader:
                    if self._stop.is_set():
                        return
                    small = self._prepare(batch.luma)
                    small_u8 = to_uint8(small)
                    for i in range(len(batch)):
                        cur = small[i : i + 1]
                        if prev_u8 is None or prev is None:
                            cut, trust = True, 0.0
                        else:
                            link = detector.link(prev_u8, small_u8[i], prev, cur, both_ways=False)
                            cut = link.cut
                            trust = 0.0 if cut or link.confidence is None else float(link.confidence.mean())
                        with self._lock:
                            if cut:
                                self.scan.shot_starts.append(len(self.scan.pts))
                            self.scan.pts.append(batch.pts[i])
                            self.scan.follow.append(trust)
                        prev_u8, prev = small_u8[i], cur
        except Exception as exc:  # shown in the page; the frames scanned so far stay usable
            with self._lock:
                self.scan.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finally:
            with self._lock:
                self.scan.done = True

    # -- frames ----------------------------------------------------------------------------------
    def luma(self, index: int) -> torch.Tensor:
        """Frame ``index``'s luma (1,1,H,W) in [0,1], as the run reads it."""
        with self._lock:
            if not 0 <= index < len(self.scan.pts):
                raise InputError(f"frame {index} does not exist (or is not scanned yet)")
            pts = self.scan.pts[index]
        with self._decode_lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            luma = self._decode(index, pts)
            self._cache[index] = luma
            while len(self._cache) > CACHED_FRAMES:
                self._cache.popitem(last=False)
            return luma

    def _decode(self, index: int, pts: int) -> torch.Tensor:
        if self._container is None:
            self._container = open_input(self.path)
        container = self._container
        stream = primary_video_stream(container)
        container.seek(pts, stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= pts:
                if frame.pts == pts:
                    return self._to_luma(frame)
                break
        # Timestamps missing or repeated (the scan numbered such frames itself): count from the start.
        container.seek(0, stream=stream, backward=True)
        for i, frame in enumerate(container.decode(stream)):
            if i == index:
                return self._to_luma(frame)
        raise InputError(f"frame {index} of {self.path.name} could not be decoded")

    def _to_luma(self, frame: av.VideoFrame) -> torch.Tensor:
        y, bits = frame_luma_samples(frame, self.media.video)
        return normalise_luma(y[None], bits, self.media.video.full_range)


class PhotoSource:
    """Pictures, each a "frame" of the studio; read as ``vidcolor image`` reads them."""

    kind = "photos"
    matrix = "bt601"  # stills are composed in sRGB's matrix, as vidcolor.stills does

    def __init__(self, paths: list[Path]) -> None:
        if not paths:
            raise InputError("no picture to open")
        self.paths = paths
        self._sizes: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()
        for i, path in enumerate(paths):  # every picture is checked now: a bad one fails at start
            image = read_image(path)
            self._sizes[i] = (image.height, image.width)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def count(self) -> int:
        return len(self.paths)

    def size(self, index: int) -> tuple[int, int]:
        self._check(index)
        return self._sizes[index]

    def snapshot(self) -> dict:
        return {"frames": len(self.paths), "expected": len(self.paths), "done": True, "error": None}

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.paths):
            raise InputError(f"picture {index} does not exist")

    def luma(self, index: int) -> torch.Tensor:
        self._check(index)
        image = read_image(self.paths[index])
        return torch.from_numpy(image.luma)[None, None]
