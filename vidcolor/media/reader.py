"""Streaming decode: a thread demuxes and decodes the video stream into a bounded queue of batches.

Each ``DecodedBatch`` carries the frames' luma as a float tensor (B,1,H,W) in [0,1] (full-range
normalised, limited range respected), the ORIGINAL Y samples (kept byte for byte for the output)
and every frame's pts and time base. Chroma planes are dropped: the model replaces them.

Damaged input is colourised as far as it decodes: packets the decoder rejects are counted in
``skipped_packets``; a file cut short ends the stream early with a warning.
Memory is bounded by ``queue_batches`` × ``batch_size`` frames, whatever the film's length.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.media.excerpt import FrameRange
from vidcolor.media.probe import VideoInfo, open_input, primary_video_stream

_END = object()


@dataclass
class DecodedBatch:
    luma: torch.Tensor  # (B,1,H,W) float32 in [0,1]
    y_planes: np.ndarray  # (B,H,W) uint8 or uint16: the decoded Y samples, untouched
    pts: list[int]  # in ``time_base`` units
    time_base: Fraction
    bits: int  # bit depth of the Y samples
    full_range: bool
    first_index: int  # index of the batch's first frame in the decoded sequence

    def __len__(self) -> int:
        return len(self.pts)


def is_planar_yuv(fmt: av.VideoFormat) -> bool:
    """Formats whose plane 0 is the luma we keep as is (yuv4xxp, yuvj4xxp, high bit depth, gray)."""
    name = fmt.name
    if fmt.is_rgb or fmt.has_palette or fmt.is_bit_stream or fmt.is_big_endian or "bayer" in name:
        return False
    comps = fmt.components
    if not comps or comps[0].plane != 0 or comps[0].bits > 16:
        return False
    if name.startswith("gray"):
        return not name.startswith("graya") and "f" not in name.removeprefix("gray")
    return name.startswith(("yuv", "yuvj")) and not name.startswith("yuva") and len({c.plane for c in comps}) == 3


def y_plane(frame: av.VideoFrame, bits: int) -> np.ndarray:
    """The Y plane's samples as an (H,W) array (uint8, or uint16 above 8 bits), copied."""
    plane = frame.planes[0]
    dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
    stride = plane.line_size // np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype=dtype).reshape(-1, stride)
    return rows[: frame.height, : frame.width].copy()


def frame_luma_samples(frame: av.VideoFrame, info: VideoInfo) -> tuple[np.ndarray, int]:
    """A decoded frame's Y samples (H,W) and their bit depth. RGB, palette, NV12... are converted
    once to planar YUV by the stream's matrix and range; the luma is then the converted one."""
    if not is_planar_yuv(frame.format):
        deep = max(c.bits for c in frame.format.components) > 8
        frame = frame.reformat(
            format="yuv444p10le" if deep else "yuv444p",
            dst_colorspace=1 if info.matrix == "bt709" else 6,
            dst_color_range=2 if info.full_range else 1,
        )
    bits = frame.format.components[0].bits
    return y_plane(frame, bits), bits


def normalise_luma(y: np.ndarray, bits: int, full_range: bool) -> torch.Tensor:
    """Y samples (B,H,W) -> (B,1,H,W) float32 in [0,1], full-range normalised."""
    t = torch.from_numpy(y.astype(np.float32) if y.dtype != np.float32 else y).unsqueeze(1)
    scale = float(1 << (bits - 8))
    if full_range:
        t = t / float((1 << bits) - 1)
    else:
        t = (t - 16.0 * scale) / (219.0 * scale)
    return t.clamp_(0.0, 1.0)


class VideoReader:
    """Iterate ``DecodedBatch``es of ``batch_size`` frames decoded by a background thread.

    Use as a context manager (or call ``close``): leaving early stops the thread and closes the file.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        batch_size: int = 8,
        queue_batches: int = 2,
        frames: FrameRange | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = info
        # An excerpt: frames before ``frames.start`` are decoded and dropped (decoding is cheap beside
        # the model, and exact where seeking is not), decoding ends at ``frames.stop``; the batches'
        # indices count from the excerpt's first frame.
        self.span = frames if frames is not None else FrameRange()
        self.batch_size = max(1, batch_size)
        self.full_range = info.full_range
        self.skipped_packets = 0
        self.corrupt_packets = 0
        self.frames = 0  # frames handed on (an excerpt's)
        self.decoded = 0  # frames decoded, those before an excerpt included
        self.decode_seconds = 0.0
        self.warnings: list[str] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self._stop = threading.Event()
        self._container = open_input(self.path)
        self._thread = threading.Thread(target=self._run, name="vidcolor-decode", daemon=True)
        self._started = False

    # -- consumer side -------------------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[DecodedBatch]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a producer waiting on a full queue
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass

    # -- producer side -------------------------------------------------------------------------
    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _packets(self, stream: av.video.stream.VideoStream) -> Iterator[tuple[av.Packet, bool]]:
        """The stream's data packets, each with whether it is the last one (one packet of lookahead).

        A demuxer error ends the stream early with a warning (a file cut short, or damaged beyond
        the demuxer's resynchronisation); what was demuxed so far is still decoded.
        """
        packets = self._container.demux(stream)
        held: av.Packet | None = None
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.EOFError):
                break
            except av.error.FFmpegError as exc:
                self.warnings.append(f"input ends early or is damaged: the demuxer stopped ({exc.strerror or exc})")
                break
            if packet.size == 0:  # the demuxer's own end-of-stream marker: we flush ourselves
                continue
            if held is not None:
                yield held, False
            held = packet
        if held is not None:
            yield held, True

    def _frames(self) -> Iterator[av.VideoFrame]:
        stream = primary_video_stream(self._container)
        stream.thread_type = "AUTO"  # frame/slice threads inside the decoder (no GIL held)
        for packet, last in self._packets(stream):
            if packet.is_corrupt and last:
                # A file cut off inside its last packet. A frame-threaded decoder that fails on it
                # also discards the frames still in flight in its other threads (up to one per
                # thread), so drain those first; the incomplete packet could not decode anyway.
                self.warnings.append(
                    "the last packet of the video is incomplete (the file was cut off); its frame is left out"
                )
                break
            if packet.is_corrupt:
                self.corrupt_packets += 1
            try:
                frames = packet.decode()
            except av.error.EOFError:
                break
            except av.error.FFmpegError:
                self.skipped_packets += 1  # the decoder rejected it; conceal by skipping
                continue
            yield from frames
        yield from self._flush(stream)

    def _flush(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        try:
            yield from stream.decode(None)
        except av.error.FFmpegError:
            pass

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc if isinstance(exc, Exception) else InputError(f"{self.path}: decoding stopped ({exc!r})"))
        else:
            self._put(_END)

    def _produce(self) -> None:
        tb = self.info.time_base
        ys: list[np.ndarray] = []
        pts: list[int] = []
        bits = 8
        last_pts: int | None = None
        step = max(1, round(1 / (float(self.info.frame_rate) * tb))) if self.info.frame_rate else 1
        t0 = time.perf_counter()
        for decoded, frame in enumerate(self._frames()):
            if self._stop.is_set():
                return
            self.decoded = decoded + 1
            if decoded < self.span.start:
                last_pts = frame.pts if frame.pts is not None else last_pts
                continue
            if self.span.stop is not None and decoded >= self.span.stop:
                break
            y, bits = frame_luma_samples(frame, self.info)
            p = frame.pts
            if p is None or (last_pts is not None and p <= last_pts):
                # missing or non-increasing pts (broken muxing): keep order, step one frame
                p = (last_pts + step) if last_pts is not None else 0
            last_pts = p
            ys.append(y)
            pts.append(p)
            if len(ys) == self.batch_size:
                if not self._emit(ys, pts, tb, bits, t0):
                    return
                ys, pts = [], []
                t0 = time.perf_counter()
        if ys:
            self._emit(ys, pts, tb, bits, t0)

    def _emit(self, ys: list[np.ndarray], pts: list[int], tb: Fraction, bits: int, t0: float) -> bool:
        if len({y.shape for y in ys}) != 1:
            raise InputError(f"{self.path}: the picture size changes mid-stream; this is not supported")
        planes = np.stack(ys)
        batch = DecodedBatch(
            luma=normalise_luma(planes, bits, self.full_range),
            y_planes=planes,
            pts=pts,
            time_base=tb,
            bits=bits,
            full_range=self.full_range,
            first_index=self.frames,
        )
        self.frames += len(ys)
        self.decode_seconds += time.perf_counter() - t0
        return self._put(batch)
