"""Audio and subtitle streams copied packet for packet beside the new video (interleaved by
time), re-encoded with a warning only where OUT's container cannot hold their codec; container and
stream metadata carried over."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from vidcolor.media.probe import (
    MediaInfo,
    open_input,
)

# Container metadata the muxer writes itself: copying it would be stale or wrong.
MUXER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}
STREAM_STAT_KEYS = ("DURATION", "BPS", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "_STATISTICS", "ENCODER", "encoder")
# Audio encoders for containers that cannot hold the input's audio codec (PyAV encoder names).
AUDIO_ENCODERS = {"opus": "libopus", "vorbis": "libvorbis", "mp3": "libmp3lame"}


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
                self.warnings.append(
                    f"subtitle stream #{stream.index} ({name}) cannot be stored in {out.format.name}; dropped"
                )
                continue
            _copy_metadata(stream.metadata, self.map[stream.index].out.metadata)
        self._packets = self.container.demux([self.container.streams[i] for i in self.map]) if self.map else iter(())
        self._pending: av.Packet | None = None
        self._done = not self.map
        self._origin: float | None = None  # an excerpt's start (seconds of IN): see ``start_at``

    def start_at(self, seconds: float) -> None:
        """Copy only what plays from ``seconds`` of IN on, shifted to start at 0 (an excerpt)."""
        self._origin = seconds

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
            f"audio stream #{stream.index} ({ctx.name}) cannot be stored in {self.out.format.name}; re-encoded to "
            f"{encoder}"
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
            if self._origin is not None and not _shift(packet, self._origin):
                continue  # before the excerpt
            self._write(packet)

    def end(self) -> None:
        """Nothing more will be copied: flush the audio re-encoders (an excerpt ends early)."""
        if not self._done:
            self._finish()

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


def _shift(packet: av.Packet, origin: float) -> bool:
    """Move ``packet`` ``origin`` seconds earlier; False when it would then start before 0."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or not packet.time_base:
        return False
    offset = round(origin / packet.time_base)
    if ts < offset:
        return False
    if packet.pts is not None:
        packet.pts -= offset
    if packet.dts is not None:
        packet.dts = max(0, packet.dts - offset)
    return True


def _copy_metadata(src: dict[str, str], dst: dict[str, str]) -> None:
    for key, value in src.items():
        if key in MUXER_KEYS or key.startswith(STREAM_STAT_KEYS):
            continue
        dst[key] = value
