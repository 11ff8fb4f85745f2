"""The threaded video writer and atomic output.

``VideoWriter`` encodes on its own thread from a bounded queue into ``.OUT.TOKEN.partial.ext`` beside
OUT (media/outfile.py), muxes every audio and subtitle stream packet for packet
(media/sidestreams.py), and renames the file onto OUT only on success; on any error or
interruption the partial file is deleted. What it writes was planned by media/plan.py; the frames
it takes were assembled by media/frames.py.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcolor.errors import EncodeError, OutputError
from vidcolor.media.frames import ComposedBatch
from vidcolor.media.outfile import OutputLock, create_partial, partial_pattern, remove_stale_partials
from vidcolor.media.plan import OutputPlan
from vidcolor.media.probe import (
    RANGE_FULL,
    RANGE_LIMITED,
    MediaInfo,
)
from vidcolor.media.sidestreams import SideStreamCopier, _copy_metadata


def partial_paths(dst: Path) -> list[Path]:
    """The temporaries of OUT that exist now (``.STEM.TOKEN.partial.EXT``, see media/outfile.py)."""
    return sorted(dst.parent.glob(partial_pattern(dst))) if dst.parent.is_dir() else []


# -- the writer ---------------------------------------------------------------------------------
_END = object()


@dataclass
class WriterStats:
    frames: int = 0
    packets: int = 0
    encode_seconds: float = 0.0
    side_packets: int = 0
    warnings: list[str] = field(default_factory=list)


class VideoWriter:
    """Encode ``ComposedBatch``es on a thread; ``finish`` renames onto OUT, ``abort`` deletes.

    Leaving the ``with`` block by an exception aborts: the partial file never survives.
    """

    def __init__(
        self,
        src: Path,
        media: MediaInfo,
        plan: OutputPlan,
        threads: int = 0,
        queue_batches: int = 2,
        excerpt: bool = False,
    ) -> None:
        self.src, self.media, self.plan = src, media, plan
        # An excerpt (``run --frames``) starts at its first frame: timestamps and side streams are
        # shifted to begin at 0 and cut where its video ends.
        self.excerpt = excerpt
        self._origin: int | None = None  # the first frame's pts, set by the first batch of an excerpt
        self._end_pts: int | None = None  # where the last frame ends
        # OUT is locked for the whole run; temporaries of dead runs go; ours is unique and new.
        self._lock = OutputLock(plan.path).acquire()
        try:
            remove_stale_partials(plan.path, [src])
            self.tmp = create_partial(plan.path, [src])
        except BaseException:
            self._lock.release()
            raise
        self.stats = WriterStats(warnings=list(plan.warnings))
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._closed = False
        self._out: av.container.OutputContainer | None = None
        self._copier: SideStreamCopier | None = None
        try:
            self._open(threads)
        except BaseException:
            self._cleanup()
            raise
        self._thread = threading.Thread(target=self._run, name="vidcolor-encode", daemon=True)
        self._thread.start()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.abort()

    # -- setup -----------------------------------------------------------------------------------
    def _open(self, threads: int) -> None:
        plan, info = self.plan, self.media.video
        try:
            self._out = av.open(str(self.tmp), "w", format=plan.format)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"{plan.path}: cannot be written ({getattr(exc, 'strerror', None) or exc})") from None
        out = self._out
        _copy_metadata(self.media.metadata, out.metadata)
        rate = info.frame_rate or (Fraction(1) / info.time_base if info.time_base else Fraction(25))
        if rate > 1000:  # a time base, not a frame rate (some VFR files): keep encoders sane
            rate = Fraction(30)
        vs = out.add_stream(plan.codec, rate=rate)
        ctx = vs.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = plan.width, plan.height, plan.pix_fmt
        ctx.time_base = info.time_base
        vs.time_base = info.time_base
        ctx.framerate = rate
        ctx.color_primaries = info.color_primaries
        ctx.color_trc = info.color_trc
        ctx.colorspace = plan.colorspace
        ctx.color_range = RANGE_FULL if plan.full_range else RANGE_LIMITED
        ctx.field_order = plan.field_order
        if threads:
            ctx.thread_count = threads
        vs.options = dict(plan.options)
        if info.display_matrix is not None:
            vs.set_display_matrix(info.display_matrix)
        elif info.rotation:
            vs.set_display_rotation(info.rotation)
        self._vs = vs
        self._copier = SideStreamCopier(self.src, self.media, out, self.stats.warnings)
        meta = dict(self._copier.container.streams[info.index].metadata)
        meta.pop("rotate", None)  # carried by the display matrix instead
        _copy_metadata(meta, vs.metadata)

    # -- producer API (pipeline thread) ----------------------------------------------------------
    def put(self, batch: ComposedBatch) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Flush the encoder, close the file and rename it onto OUT."""
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_if_failed()
        self._closed = True
        try:
            self._close_container()
            os.replace(self.tmp, self.plan.path)
            self._lock.release()
        except BaseException as exc:
            self._cleanup()
            if isinstance(exc, (av.error.FFmpegError, OSError)):
                raise EncodeError(f"{self.plan.path}: finishing the file failed ({exc})") from None
            raise

    def abort(self) -> None:
        self._closed = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._cleanup()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err = self._error
            self.abort()
            if isinstance(err, (OutputError, EncodeError)):
                raise err
            raise EncodeError(f"encoding {self.plan.path.name} failed: {err}") from err

    # -- encode thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                t0 = time.perf_counter()
                if item is _END:
                    self._mux_video(self._vs.encode(None))
                    self._copier.mux_until(self._excerpt_end())
                    self._copier.end()
                    self.stats.side_packets = self._copier.copied_packets
                    self.stats.encode_seconds += time.perf_counter() - t0
                    return
                self._encode(item)
                self.stats.encode_seconds += time.perf_counter() - t0
        except BaseException as exc:
            self._error = exc

    def _excerpt_end(self) -> float | None:
        """Seconds of IN where an excerpt's video ends (None: not an excerpt, copy everything)."""
        if not self.excerpt or self._end_pts is None:
            return None
        return float(self._end_pts * self.media.video.time_base)

    def _encode(self, batch: ComposedBatch) -> None:
        plan = self.plan
        if self.excerpt and batch.pts:
            if self._origin is None:
                self._origin = batch.pts[0]
                self._copier.start_at(float(self._origin * batch.time_base))
            step = batch.pts[-1] - batch.pts[-2] if len(batch.pts) > 1 else self._frame_step(batch.time_base)
            self._end_pts = batch.pts[-1] + max(1, step)
        dtype = np.uint8 if plan.bits <= 8 else np.dtype("<u2")
        for i, pts in enumerate(batch.pts):
            frame = av.VideoFrame(plan.width, plan.height, plan.pix_fmt)
            planes = frame.planes
            _fill(planes[0], batch.y[i], dtype)
            if len(planes) >= 3:
                _fill(planes[1], batch.uv[i, 0], dtype)
                _fill(planes[2], batch.uv[i, 1], dtype)
            frame.pts = pts - self._origin if self._origin is not None else pts
            frame.time_base = batch.time_base
            frame.color_range = RANGE_FULL if plan.full_range else RANGE_LIMITED
            frame.colorspace = plan.colorspace
            self._mux_video(self._vs.encode(frame))
            self.stats.frames += 1

    def _frame_step(self, time_base: Fraction) -> int:
        rate = self.media.video.frame_rate
        return max(1, round(1 / (float(rate) * time_base))) if rate else 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        shift = float(self._origin * self.media.video.time_base) if self._origin is not None else 0.0
        for packet in packets:
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None and packet.time_base:
                self._copier.mux_until(float(ts * packet.time_base) + shift)
            self._out.mux(packet)
            self.stats.packets += 1

    # -- teardown --------------------------------------------------------------------------------
    def _close_container(self) -> None:
        if self._copier is not None:
            self._copier.close()
            self._copier = None
        if self._out is not None:
            out, self._out = self._out, None
            out.close()

    def _cleanup(self) -> None:
        try:
            self._close_container()
        except (av.error.FFmpegError, OSError):
            pass
        finally:
            self.tmp.unlink(missing_ok=True)
            self._lock.release()


def _fill(plane: av.video.plane.VideoPlane, data: np.ndarray, dtype: np.dtype) -> None:
    stride = plane.line_size // np.dtype(dtype).itemsize
    view = np.frombuffer(plane, dtype=dtype).reshape(-1, stride)
    h, w = data.shape
    view[:h, :w] = data
