"""Encode, remux and atomic output.

- ``plan_output`` resolves the container (from OUT's extension), codec, pixel format, coded size
  and encoder options, and says what it had to change (warnings), before anything is written.
- ``compose_planes`` builds an output frame's planes: the ORIGINAL Y samples (only re-depthed or
  edge-padded where the output format forces it) and the predicted CbCr quantised into U, V.
- ``VideoWriter`` encodes on its own thread from a bounded queue into ``.OUT.TOKEN.partial.ext`` beside
  OUT, muxes every audio and subtitle stream packet for packet (interleaved by dts), and renames
  the file onto OUT only on success; on any error or interruption the partial file is deleted.
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
import torch

from vidcolor.config import EncodeConfig
from vidcolor.errors import EncodeError, OutputError
from vidcolor.media.outfile import OutputLock, create_partial, partial_pattern, remove_stale_partials
from vidcolor.media.probe import (
    FIELD_BB,
    FIELD_BT,
    FIELD_ORDERS,
    FIELD_PROGRESSIVE,
    MATRIX_BT601,
    MATRIX_BT709,
    RANGE_FULL,
    RANGE_LIMITED,
    MediaInfo,
    VideoInfo,
    open_input,
)

# OUT's extension -> ffmpeg muxer. Anything else is refused up front (exit 2), not after an hour.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mxf": "mxf",
    ".nut": "nut",
}
# Encoders that cannot code an odd-sized picture with subsampled chroma (the frame is padded).
EVEN_SIZE_CODECS = {"libx264", "libx265", "h264_nvenc", "hevc_nvenc"}
NO_PTS_FORMATS = {"avi"}  # containers that keep decode order only
FIELD_CODECS = {"libx264", "ffv1", "prores_ks", "mpeg2video"}  # encoders that keep interlaced coding
# Container metadata the muxer writes itself: copying it would be stale or wrong.
MUXER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}
STREAM_STAT_KEYS = ("DURATION", "BPS", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "_STATISTICS", "ENCODER", "encoder")
# Audio encoders for containers that cannot hold the input's audio codec (PyAV encoder names).
AUDIO_ENCODERS = {"opus": "libopus", "vorbis": "libvorbis", "mp3": "libmp3lame"}


def partial_paths(dst: Path) -> list[Path]:
    """The temporaries of OUT that exist now (``.STEM.TOKEN.partial.EXT``, see media/outfile.py)."""
    return sorted(dst.parent.glob(partial_pattern(dst))) if dst.parent.is_dir() else []


def container_format(dst: Path) -> str:
    fmt = CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        known = " ".join(sorted(CONTAINERS))
        raise OutputError(f"{dst}: unsupported output extension {dst.suffix or '(none)'!r} (use one of {known})")
    return fmt


@dataclass(frozen=True)
class OutputPlan:
    path: Path
    format: str
    codec: str
    pix_fmt: str
    width: int  # coded size (the input's, or padded to even where the codec needs it)
    height: int
    options: dict[str, str]
    bits: int
    full_range: bool
    colorspace: int  # the matrix tag written (the input's, or the one used when it had none)
    matrix: str
    field_order: int = FIELD_PROGRESSIVE  # the input's, where the codec can code fields
    warnings: tuple[str, ...] = ()


def _codec_formats(codec: str) -> list[str]:
    try:
        c = av.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputError(f"unknown or unavailable encoder {codec!r} in this PyAV build") from None
    if c.type != "video":
        raise OutputError(f"{codec!r} is not a video encoder")
    return [f.name for f in (c.video_formats or [])]


def _choose_pix_fmt(info: VideoInfo, codec: str, wanted: str | None, formats: list[str]) -> str:
    if wanted:
        if formats and wanted not in formats:
            raise OutputError(f"{codec} cannot encode pixel format {wanted!r} (it can: {', '.join(formats)})")
        return wanted
    src = info.pix_fmt.replace("yuvj", "yuv")
    candidates = []
    if src.startswith("yuv") and not src.startswith("yuva"):
        candidates.append(src)
        base = src.split("p")[0] + "p"  # same subsampling, 8-bit (e.g. yuv422p10le -> yuv422p)
        candidates.append(base)
        candidates.extend(f for f in formats if f.startswith(base) and f.endswith("le"))
    elif src.startswith("gray") and av.VideoFormat(src).components[0].bits > 8:
        candidates += ["yuv420p10le", "yuv420p12le"]  # keep a deep B&W master's depth
    candidates += ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le"]
    for name in candidates:
        if not formats or name in formats:
            return name
    raise OutputError(f"{codec} has no planar YUV pixel format this tool can write")


def _encoder_options(codec: str, cfg: EncodeConfig) -> dict[str, str]:
    crf = str(cfg.crf)
    if codec in ("libx264", "libx265"):
        # crf 0 is lossless only for 8-bit x264; qp 0 is lossless at every depth
        opts = {"qp" if cfg.crf == 0 and codec == "libx264" else "crf": crf, "preset": cfg.preset}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error" + (":lossless=1" if cfg.crf == 0 else "")
        return opts
    if codec == "libvpx-vp9":
        opts = {"crf": crf, "b": "0", "row-mt": "1"}
        if cfg.crf == 0:
            opts["lossless"] = "1"
        return opts
    if codec == "libsvtav1":
        return {"crf": crf, "preset": "8"}
    if codec == "prores_ks":
        return {"profile": "3"}  # ProRes 422 HQ
    if codec == "ffv1":
        return {"level": "3", "slicecrc": "1"}
    return {}


def plan_output(dst: Path, media: MediaInfo, cfg: EncodeConfig) -> OutputPlan:
    fmt = container_format(dst)
    info = media.video
    warnings: list[str] = []
    if not 0 <= cfg.crf <= 63:
        raise OutputError(f"--crf {cfg.crf} is out of range (0..63; 0 is lossless)")
    codec = cfg.codec
    if codec is None:
        codec = "libvpx-vp9" if fmt == "webm" else "libx264"
    formats = _codec_formats(codec)
    try:
        holds = av.format.ContainerFormat(fmt, "w")
        encoder_id = av.Codec(codec, "w").canonical_name
    except (av.error.FFmpegError, ValueError) as exc:
        raise OutputError(f"cannot write {fmt}: {exc}") from None
    if not _container_holds(holds, encoder_id):
        raise OutputError(f"a {dst.suffix} file cannot hold {codec} video; choose another --codec or extension")
    pix_fmt = _choose_pix_fmt(info, codec, cfg.pix_fmt, formats)
    desc = av.VideoFormat(pix_fmt)
    if cfg.pix_fmt is None and info.pix_fmt.replace("yuvj", "yuv") not in (pix_fmt,) and not info.pix_fmt.startswith("gray"):
        warnings.append(f"{codec} cannot encode {info.pix_fmt}; writing {pix_fmt}")
    width, height = info.width, info.height
    if codec in EVEN_SIZE_CODECS:
        # Only a subsampled chroma plane needs an even side (4:4:4 codes any size, 4:2:2 any height).
        pw = width + (width % 2 if _subsampled_h(desc) else 0)
        ph = height + (height % 2 if _subsampled_v(desc) else 0)
        if (pw, ph) != (width, height):
            warnings.append(
                f"{codec} cannot code an odd-sized {pix_fmt} picture: {width}x{height} padded to {pw}x{ph} "
                "(use --codec ffv1 to keep the size)"
            )
            width, height = pw, ph
    options = _encoder_options(codec, cfg)
    if fmt in NO_PTS_FORMATS:
        # AVI stores no presentation times: reordered (B-) frames would come back out of order.
        options["bf"] = "0"
    field_order = FIELD_PROGRESSIVE
    if info.interlaced:
        order = FIELD_ORDERS[info.field_order]
        if codec in FIELD_CODECS:
            field_order = info.field_order
            if codec == "libx264":
                # x264 codes fields only when asked (MBAFF); its default field order is top first
                options["flags"] = "+ildct+ilme"
                if info.field_order in (FIELD_BB, FIELD_BT):
                    options["x264-params"] = "bff=1"
            warnings.append(
                f"the input is interlaced ({order}): written interlaced with the same field order; colour is "
                "predicted on whole frames, so deinterlace first if fast motion combs the colour"
            )
        else:
            warnings.append(
                f"the input is interlaced ({order}) but {codec} codes no fields here: the output is flagged "
                "progressive; deinterlace first or choose --codec libx264 or ffv1"
            )
    bits = desc.components[0].bits
    colorspace = info.colorspace
    if colorspace in (2, 0) or colorspace is None:
        colorspace = MATRIX_BT709 if info.matrix == "bt709" else MATRIX_BT601
    return OutputPlan(
        path=dst,
        format=fmt,
        codec=codec,
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        options=options,
        bits=bits,
        full_range=info.full_range,
        colorspace=colorspace,
        matrix=info.matrix,
        field_order=field_order,
        warnings=tuple(warnings),
    )


def _subsampled_h(desc: av.VideoFormat) -> bool:
    return desc.chroma_width(2) == 1


def _subsampled_v(desc: av.VideoFormat) -> bool:
    return desc.chroma_height(2) == 1


def _container_holds(fmt: av.format.ContainerFormat, codec_name: str) -> bool:
    """Whether the muxer accepts a codec (avformat_query_codec, via a throwaway in-memory container)."""
    import io

    probe = av.open(io.BytesIO(), "w", format=fmt.name)
    try:
        supported = probe.supported_codecs
        return not supported or codec_name in supported
    finally:
        probe.close()


# -- frame assembly -----------------------------------------------------------------------------
def quantise_chroma(chroma: torch.Tensor, bits: int, full_range: bool) -> np.ndarray:
    """CbCr (B,2,h,w) centred on 0 -> integer U, V samples (B,2,h,w) with the stream's range."""
    mid = float(1 << (bits - 1))
    if full_range:
        scale, lo, hi = float((1 << bits) - 1), 0.0, float((1 << bits) - 1)
    else:
        s = float(1 << (bits - 8))
        scale, lo, hi = 224.0 * s, 16.0 * s, 240.0 * s
    q = (chroma.float() * scale + mid).round_().clamp_(lo, hi)
    return q.to(torch.int32).numpy().astype(np.uint8 if bits <= 8 else np.uint16)


def fit_luma(y: np.ndarray, in_bits: int, out_bits: int, height: int, width: int) -> np.ndarray:
    """Original Y samples (B,H,W) -> the output's depth and coded size.

    Same depth: the samples are copied untouched. Edge rows/columns are replicated where the
    coded size is larger (odd sizes for 4:2:0 encoders).
    """
    if out_bits > in_bits:
        y = y.astype(np.uint16) << (out_bits - in_bits)
    elif out_bits < in_bits:
        shift = in_bits - out_bits
        y = np.minimum((y.astype(np.uint32) + (1 << (shift - 1))) >> shift, (1 << out_bits) - 1)
        y = y.astype(np.uint8 if out_bits <= 8 else np.uint16)
    ph, pw = height - y.shape[1], width - y.shape[2]
    if ph or pw:
        y = np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="edge")
    return y


def pad_luma_tensor(luma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    ph, pw = height - luma.shape[-2], width - luma.shape[-1]
    if ph or pw:
        luma = torch.nn.functional.pad(luma, (0, pw, 0, ph), mode="replicate")
    return luma


@dataclass
class ComposedBatch:
    y: np.ndarray  # (B,H,W)
    uv: np.ndarray  # (B,2,h,w)
    pts: list[int]
    time_base: Fraction


# -- stream copy --------------------------------------------------------------------------------
@dataclass
class _SideStream:
    out: av.stream.Stream
    decoder: av.codec.context.CodecContext | None = None  # set when the audio is re-encoded
    resampler: av.AudioResampler | None = None


class SideStreamCopier:
    """Audio and subtitle streams from a second handle on the input, muxed in dts order as the
    video advances, so the output interleaves properly and nothing is buffered for long."""

    def __init__(self, src: Path, media: MediaInfo, out: av.container.OutputContainer, warnings: list[str]) -> None:
        self.container = open_input(src)
        self.out = out
        self.warnings = warnings
        self.map: dict[int, _SideStream] = {}
        self.copied_packets = 0
        supported = out.supported_codecs
        for stream in self.container.streams:
            if stream.index == media.video.index:
                continue
            if stream.type not in ("audio", "subtitle"):
                self.warnings.append(f"stream #{stream.index} ({stream.type}) is not copied")
                continue
            ctx = stream.codec_context
            name = (ctx.codec.canonical_name or ctx.name) if ctx is not None else None
            if name and (not supported or name in supported):
                ost = out.add_stream_from_template(stream)
                ost.time_base = stream.time_base
                self.map[stream.index] = _SideStream(ost)
            elif stream.type == "audio":
                self.map[stream.index] = self._reencode(stream)
            else:
                self.warnings.append(f"subtitle stream #{stream.index} ({name}) cannot be stored in {out.format.name}; dropped")
                continue
            _copy_metadata(stream.metadata, self.map[stream.index].out.metadata)
        self._packets = self.container.demux([self.container.streams[i] for i in self.map]) if self.map else iter(())
        self._pending: av.Packet | None = None
        self._done = not self.map

    def _reencode(self, stream: av.audio.stream.AudioStream) -> _SideStream:
        target = self.out.default_audio_codec
        encoder = AUDIO_ENCODERS.get(target, target)
        ctx = stream.codec_context
        rate = ctx.sample_rate or 48000
        if encoder == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000
        ost = self.out.add_stream(encoder, rate=rate, layout=ctx.layout.name if ctx.layout else "stereo")
        fmt = ost.codec_context.codec.audio_formats[0].name if ost.codec_context.codec.audio_formats else None
        self.warnings.append(
            f"audio stream #{stream.index} ({ctx.name}) cannot be stored in {self.out.format.name}; re-encoded to {encoder}"
        )
        resampler = av.AudioResampler(format=fmt, layout=ost.codec_context.layout, rate=rate)
        return _SideStream(ost, decoder=ctx, resampler=resampler)

    def mux_until(self, seconds: float | None) -> None:
        """Mux side packets whose dts is at or before ``seconds`` (None: everything left)."""
        while not self._done:
            if self._pending is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._finish()
                    return
                except av.error.FFmpegError as exc:
                    self.warnings.append(f"copying audio/subtitles stopped early ({exc.strerror or exc})")
                    self._finish()
                    return
                if packet.size == 0 and packet.dts is None:
                    continue  # demuxer's end-of-stream marker
                self._pending = packet
            packet = self._pending
            ts = packet.dts if packet.dts is not None else packet.pts
            if seconds is not None and ts is not None and float(ts * packet.time_base) > seconds:
                return
            self._pending = None
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        side = self.map[packet.stream_index]
        if side.decoder is None:
            packet.stream = side.out
            self.out.mux(packet)
            self.copied_packets += 1
            return
        try:
            frames = side.decoder.decode(packet)
        except av.error.FFmpegError:
            return
        for frame in frames:
            self._encode_audio(side, frame)

    def _encode_audio(self, side: _SideStream, frame: av.AudioFrame | None) -> None:
        frames = side.resampler.resample(frame) if side.resampler is not None else [frame]
        for f in frames:
            if f is not None:
                f.pts = None  # the encoder counts samples; resampled frames restart cleanly
            for p in side.out.encode(f):
                self.out.mux(p)
        if frame is None:
            for p in side.out.encode(None):
                self.out.mux(p)

    def _finish(self) -> None:
        self._done = True
        for side in self.map.values():
            if side.decoder is not None:
                try:
                    for frame in side.decoder.decode(None):
                        self._encode_audio(side, frame)
                except av.error.FFmpegError:
                    pass
                self._encode_audio(side, None)

    def close(self) -> None:
        self.container.close()


def _copy_metadata(src: dict[str, str], dst: dict[str, str]) -> None:
    for key, value in src.items():
        if key in MUXER_KEYS or key.startswith(STREAM_STAT_KEYS):
            continue
        dst[key] = value


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

    def __init__(self, src: Path, media: MediaInfo, plan: OutputPlan, threads: int = 0, queue_batches: int = 2) -> None:
        self.src, self.media, self.plan = src, media, plan
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
                    self._copier.mux_until(None)
                    self.stats.side_packets = self._copier.copied_packets
                    self.stats.encode_seconds += time.perf_counter() - t0
                    return
                self._encode(item)
                self.stats.encode_seconds += time.perf_counter() - t0
        except BaseException as exc:
            self._error = exc

    def _encode(self, batch: ComposedBatch) -> None:
        plan = self.plan
        dtype = np.uint8 if plan.bits <= 8 else np.dtype("<u2")
        for i, pts in enumerate(batch.pts):
            frame = av.VideoFrame(plan.width, plan.height, plan.pix_fmt)
            planes = frame.planes
            _fill(planes[0], batch.y[i], dtype)
            if len(planes) >= 3:
                _fill(planes[1], batch.uv[i, 0], dtype)
                _fill(planes[2], batch.uv[i, 1], dtype)
            frame.pts = pts
            frame.time_base = batch.time_base
            frame.color_range = RANGE_FULL if plan.full_range else RANGE_LIMITED
            frame.colorspace = plan.colorspace
            self._mux_video(self._vs.encode(frame))
            self.stats.frames += 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None and packet.time_base:
                self._copier.mux_until(float(ts * packet.time_base))
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
