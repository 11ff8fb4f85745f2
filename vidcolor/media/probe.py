"""What a media file holds: streams, codecs, frame rate, rotation, colour tags, duration.

``probe`` opens the file with PyAV (never ffprobe), reads the container header and decodes the
first video frame (the display matrix reaches the frames as side data). ``nb_frames`` is often
absent and is never relied on: ``frames`` is ``None`` then, and ``estimated_frames`` guesses from
the duration for progress bars only.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidcolor.errors import InputError

# ffmpeg's AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace / AVColorRange codes
# that matter here; the numeric code is what is copied to the output, the name is for reports.
PRIMARIES = {1: "bt709", 2: "unspecified", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
TRANSFERS = {1: "bt709", 2: "unspecified", 6: "smpte170m", 13: "iec61966-2-1", 16: "smpte2084", 18: "arib-std-b67"}
MATRICES = {0: "rgb", 1: "bt709", 2: "unspecified", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc", 10: "bt2020c"}
RANGES = {0: "unspecified", 1: "limited", 2: "full"}
FIELD_PROGRESSIVE, FIELD_TT, FIELD_BB, FIELD_TB, FIELD_BT = 1, 2, 3, 4, 5
FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # AVFieldOrder
INTERLACED_ORDERS = frozenset({2, 3, 4, 5})
RANGE_LIMITED, RANGE_FULL = 1, 2
MATRIX_BT709, MATRIX_BT601 = 1, 6
PRIMARIES_BT709, TRANSFER_BT709 = 1, 1


def tag_bt709_limited(ctx) -> None:
    """Tag a video codec context or frame as BT.709 (primaries, transfer, matrix), limited range."""
    ctx.color_primaries, ctx.color_trc = PRIMARIES_BT709, TRANSFER_BT709
    ctx.colorspace, ctx.color_range = MATRIX_BT709, RANGE_LIMITED


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str
    language: str | None = None


@dataclass(frozen=True)
class VideoInfo:
    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    frame_rate: Fraction | None  # average rate; None where the container gives none
    frames: int | None  # the container's frame count, when it states one
    duration: float | None  # seconds
    rotation: int  # degrees counter-clockwise, as VideoFrame.rotation reports it
    display_matrix: tuple[int, ...] | None  # the 9 raw ints, copied to the output as is
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int
    field_order: int = FIELD_PROGRESSIVE  # AVFieldOrder: 2-5 interlaced (tt, bb, tb, bt)

    @property
    def interlaced(self) -> bool:
        return self.field_order in INTERLACED_ORDERS

    @property
    def matrix(self) -> str:
        """The luma/chroma matrix to compute colour with: the tag, else BT.709 for HD, BT.601 below."""
        if self.colorspace in (1, 9, 10):  # BT.2020 has no entry in color.py; 709 is its nearest
            return "bt709"
        if self.colorspace in (5, 6, 4, 7):
            return "bt601"
        return "bt709" if self.height >= 720 or self.width >= 1280 else "bt601"

    @property
    def full_range(self) -> bool:
        """Unspecified range is limited (ffmpeg's rule) except for the yuvj* (JPEG) formats."""
        return self.color_range == RANGE_FULL or self.pix_fmt.startswith("yuvj")

    @property
    def estimated_frames(self) -> int | None:
        if self.frames:
            return self.frames
        if self.duration and self.frame_rate:
            return max(1, round(self.duration * float(self.frame_rate)))
        return None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["time_base"] = str(self.time_base)
        d["frame_rate"] = str(self.frame_rate) if self.frame_rate else None
        d["color_primaries"] = PRIMARIES.get(self.color_primaries, str(self.color_primaries))
        d["color_trc"] = TRANSFERS.get(self.color_trc, str(self.color_trc))
        d["colorspace"] = MATRICES.get(self.colorspace, str(self.colorspace))
        d["color_range"] = RANGES.get(self.color_range, str(self.color_range))
        d["display_matrix"] = list(self.display_matrix) if self.display_matrix else None
        d["field_order"] = FIELD_ORDERS.get(self.field_order, str(self.field_order))
        return d


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format: str
    duration: float | None
    size_bytes: int
    video: VideoInfo
    streams: tuple[StreamInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "duration": self.duration,
            "size_bytes": self.size_bytes,
            "video": self.video.summary(),
            "streams": [asdict(s) for s in self.streams],
            "metadata": dict(self.metadata),
        }


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open ``path`` for reading or raise a one-line InputError (missing, directory, not media)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file")
    try:
        container = av.open(str(p), metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: not a readable media file ({_short(exc)})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    kind = not_a_film(container.format.name)
    if kind:
        container.close()  # before any frame is decoded (a still image's side data can crash PyAV)
        raise InputError(
            f"{p}: is {kind}, not a video file" + (" (use `vidcolor image`)" if kind == "a still picture" else "")
        )
    return container


# FFmpeg demuxers that open files which are not films: still pictures and text. FFmpeg renders a
# text file as frames of text (tty) and a PNG as a one-frame "video"; neither is a film to colour.
STILL_DEMUXERS = frozenset({"image2", "apng", "gif_pipe", "webp_pipe", "tiff_pipe", "jpegxl_anim"})
TEXT_DEMUXERS = frozenset(
    {
        "tty",
        "srt",
        "ass",
        "webvtt",
        "lrc",
        "microdvd",
        "subviewer",
        "subviewer1",
        "sami",
        "jacosub",
        "mpl2",
        "pjs",
        "realtext",
        "stl",
        "vplayer",
        "aqtitle",
    }
)


def not_a_film(format_name: str) -> str:
    """'a still picture' / 'a text file' when a demuxer name says the file is no film, else ''."""
    names = set(format_name.split(","))
    if names & STILL_DEMUXERS or any(n.endswith("_pipe") and n != "yuv4mpegpipe" for n in names):
        return "a still picture"
    if names & TEXT_DEMUXERS:
        return "a text file"
    return ""


def _short(exc: BaseException) -> str:
    """ffmpeg's message without the errno prefix and the repeated file name."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(":")[0].strip()


def primary_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream that is a real picture track (not cover art)."""
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        return stream
    raise InputError(f"{container.name}: has no video stream")


def display_matrix_of(frame: av.VideoFrame) -> tuple[int, ...] | None:
    # Looked up by type: iterating frame.side_data gives the entries up to PyAV 18.1.0 and the
    # types (it is a Mapping) from 18.1.1.
    sd = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if sd is not None:
        raw = bytes(sd)
        if len(raw) >= 36:
            return struct.unpack("<9i", raw[:36])
    return None


def _rotate_tag(value: str | None) -> int:
    """The legacy ``rotate`` tag is clockwise degrees; VideoInfo.rotation is counter-clockwise."""
    try:
        degrees = -int(float(value)) if value else 0
    except ValueError:
        return 0
    return (degrees + 180) % 360 - 180 if degrees else 0


def _stream_kind(stream: av.stream.Stream) -> str:
    return stream.type or "unknown"


def probe(path: str | Path) -> MediaInfo:
    p = Path(path)
    container = open_input(p)
    try:
        vstream = primary_video_stream(container)
        ctx = vstream.codec_context
        rotation, matrix = 0, None
        first_format = ctx.format.name if ctx.format else None
        field_order = int(ctx.field_order or 0)
        try:
            for frame in container.decode(vstream):
                rotation, matrix = int(frame.rotation or 0), display_matrix_of(frame)
                first_format = frame.format.name
                if frame.interlaced_frame and field_order not in INTERLACED_ORDERS:
                    field_order = FIELD_TT  # flagged per frame only (PAFF, MPEG-2): top first is the common case
                break
        except av.error.FFmpegError:
            pass  # a damaged start: the reader counts what it skips
        if matrix is None and not rotation:
            rotation = _rotate_tag(vstream.metadata.get("rotate"))  # old files: a tag, no side data
        if first_format is None:
            raise InputError(f"{p}: the video stream has no decodable picture format")
        duration = None
        if vstream.duration is not None and vstream.time_base:
            duration = float(vstream.duration * vstream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = vstream.average_rate or vstream.guessed_rate
        video = VideoInfo(
            index=vstream.index,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=first_format,
            time_base=vstream.time_base or Fraction(1, 90000),
            frame_rate=Fraction(rate) if rate else None,
            frames=vstream.frames or None,
            duration=duration,
            rotation=rotation,
            display_matrix=matrix,
            color_primaries=int(ctx.color_primaries or 2),
            color_trc=int(ctx.color_trc or 2),
            colorspace=int(ctx.colorspace if ctx.colorspace is not None else 2),
            color_range=int(ctx.color_range or 0),
            field_order=field_order if field_order in INTERLACED_ORDERS else FIELD_PROGRESSIVE,
        )
        if video.width <= 0 or video.height <= 0:
            raise InputError(f"{p}: the video stream has no picture size")
        streams = tuple(
            StreamInfo(
                index=s.index,
                kind=_stream_kind(s),
                codec=(s.codec_context.name if s.codec_context is not None else None) or "unknown",
                language=s.metadata.get("language"),
            )
            for s in container.streams
        )
        return MediaInfo(
            path=str(p),
            format=container.format.name,
            duration=container.duration / av.time_base if container.duration is not None else duration,
            size_bytes=p.stat().st_size,
            video=video,
            streams=streams,
            metadata=dict(container.metadata),
        )
    finally:
        container.close()
