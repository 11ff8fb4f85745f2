"""Output planning: from OUT's name, the input and the encoder settings, everything the writer
will do (container, codec, pixel format, coded size, encoder options) and what it had to change
(warnings), decided before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from vidcolor.errors import OutputError
from vidcolor.media.probe import (
    FIELD_BB,
    FIELD_BT,
    FIELD_ORDERS,
    FIELD_PROGRESSIVE,
    MATRIX_BT601,
    MATRIX_BT709,
    MediaInfo,
    VideoInfo,
)


@dataclass(frozen=True)
class EncodeConfig:
    """Video encoder settings, named like ffmpeg's options.

    ``codec`` None picks libx264, or the container's own codec where it cannot hold H.264
    (VP9 for .webm). ``pix_fmt`` None keeps the input's chroma subsampling and bit depth where the
    codec can encode them, else yuv420p. ``crf`` 0 is lossless where the codec has a lossless
    mode (x264, x265, VP9); ffv1 is always lossless.
    """

    codec: str | None = None
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None
    threads: int = 0  # 0: the encoder's own choice
    queue_frames: int = 16  # frames waiting for the encoder (bounds memory)

    def __post_init__(self) -> None:
        # The codec, preset and pixel format are checked against OUT's container in plan_output.
        if self.codec == "auto":  # recipes have no null: "auto" is the default choice
            object.__setattr__(self, "codec", None)
        if isinstance(self.crf, bool) or not isinstance(self.crf, int):
            raise OutputError(f"--crf {self.crf!r} must be a whole number (0..63; 0 is lossless)")
        if not 0 <= self.crf <= 63:
            raise OutputError(f"--crf {self.crf} is out of range (0..63; 0 is lossless)")
        if self.threads < 0 or self.queue_frames < 1:
            raise OutputError("encoder threads must be >= 0 and queue_frames >= 1")


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
    if (
        cfg.pix_fmt is None
        and info.pix_fmt.replace("yuvj", "yuv") not in (pix_fmt,)
        and not info.pix_fmt.startswith("gray")
    ):
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
