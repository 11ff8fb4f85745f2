"""Real test footage for the video benchmarks: OpenCV's ``vtest.avi`` and clips derived from it.

Source: Debian's ``opencv-doc`` 4.6.0+dfsg-12 ships ``usr/share/doc/opencv-doc/examples/data/vtest.avi``
(real colour footage of people walking in a plaza, 768x576, 795 frames, 10 fps, MS-MPEG4 v3).
Licence (the package's debian/copyright, ``Files: *``): Apache-2.0 AND BSD-3-Clause (OpenCV).
Footage is never committed: it lives in ``.cache/footage/`` (git-ignored).

``vtest()`` finds it there (sha256-checked), else unpacks it from an ``opencv-doc_*.deb`` found
there, else runs ``apt-get download opencv-doc=4.6.0+dfsg-12`` (Debian's ordinary client, which
checks the package against the signed archive index) into ``.cache/footage/`` first.
Derived clips, built once with PyAV and cached beside it:

- ``acceptance_clip(frames)``: the first ``frames`` frames desaturated (the Y plane kept bit for bit,
  Cb = Cr = 128), H.264 (libx264 crf 18, yuv420p, BT.601 limited range tags) in .mp4 with a stereo
  AAC track. The sound is GENERATED, not recorded: a chirp-and-tone melody with noise "footsteps"
  (speech would need espeak-ng, which this machine lacks); it only has to be real AAC packets.
- ``colour_clip(frames)``: the same frames in colour, FFV1 in .mkv (lossless: the decoded source
  planes exactly), the ground truth for colour metrics.

    python benchmarks/footage.py            # fetch if needed, build both 250-frame clips, print paths
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcolor import metrics
from vidcolor.hashing import sha256_file
from vidcolor.media.probe import MATRIX_BT601, RANGE_LIMITED

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "footage"
PACKAGE = "opencv-doc"
VERSION = "4.6.0+dfsg-12"
MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
VTEST_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
VTEST_FRAMES = 795
RATE = 10  # vtest's frame rate (fps)
SAMPLE_RATE = 48_000


class FootageError(RuntimeError):
    """The footage cannot be found, fetched or verified."""


def rgb_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a (short) film as (H,W,3) uint8 RGB, in decoding order."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _extract_member(deb: Path, dst: Path) -> None:
    """Stream the one file out of the package's data archive (no need to unpack 95 MB of docs)."""
    tmp = dst.with_name(dst.name + ".partial")
    # dpkg-deb is cut off (broken pipe) once the member is read; its stderr is dropped because the
    # sha256 check below is what vouches for the result.
    cmd = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if info.name == MEMBER and info.isfile():
                    src = tar.extractfile(info)
                    assert src is not None
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(src, out)
                    break
            else:
                raise FootageError(f"{deb}: has no {MEMBER}")
        proc.stdout.close()
    if sha256_file(tmp) != VTEST_SHA256:
        tmp.unlink()
        raise FootageError(f"{deb}: vtest.avi does not match its sha256 {VTEST_SHA256}")
    tmp.replace(dst)


def vtest(fetch: bool = True) -> Path:
    """Path of a verified ``vtest.avi`` in .cache/footage/, unpacking or downloading it as needed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    dst = CACHE / "vtest.avi"
    if dst.is_file():
        if sha256_file(dst) == VTEST_SHA256:
            return dst
        dst.unlink()  # damaged or foreign: rebuild from the package
    debs = sorted(CACHE.glob(f"{PACKAGE}_*_all.deb"))
    if not debs and fetch:
        done = subprocess.run(
            ["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=CACHE, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise FootageError(
                f"apt-get download {PACKAGE}={VERSION} failed (try `apt-get update`): {done.stderr.strip()}"
            )
        debs = sorted(CACHE.glob(f"{PACKAGE}_*_all.deb"))
    if not debs:
        raise FootageError(f"no {PACKAGE} package in {CACHE}; run `apt-get download {PACKAGE}` there")
    _extract_member(debs[-1], dst)
    return dst


def frames_yuv(path: Path, limit: int | None = None) -> Iterator[av.VideoFrame]:
    """Decoded frames of a clip's first video stream, in order (at most ``limit``)."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit is not None and i >= limit:
                return
            yield frame


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    return [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width] for p in frame.planes]


def _grey(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame's own Y plane with neutral chroma: what a B&W transfer of it holds."""
    y = _planes(frame)[0]
    h, w = y.shape
    data = np.concatenate([y.ravel(), np.full(2 * (h // 2) * (w // 2), 128, np.uint8)])
    out = av.VideoFrame.from_ndarray(data.reshape(h * 3 // 2, w), format="yuv420p")
    return out


def soundtrack(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A generated stereo (2, n) float32 track: a rising/falling chirp, a tone melody, noise steps.

    Varied spectra and silences so the AAC encoder produces packets of varying size, like real
    sound. Deterministic (fixed seed).
    """
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(1234)
    # Chirp: 220 -> 1760 Hz and back every 4 s (phase = integral of the instantaneous frequency).
    cycle = 4.0
    pos = (t % cycle) / cycle
    freq = 220.0 * 8.0 ** (1.0 - np.abs(2.0 * pos - 1.0))
    chirp = np.sin(2 * np.pi * np.cumsum(freq) / rate)
    # Melody: a new note every 0.5 s on a pentatonic scale, with a decaying envelope.
    notes = 440.0 * 2.0 ** (np.array([0, 2, 4, 7, 9, 12]) / 12.0)
    note = notes[rng.integers(0, len(notes), size=int(seconds / 0.5) + 1)][(t / 0.5).astype(int)]
    melody = np.sin(2 * np.pi * note * t) * np.exp(-3.0 * (t % 0.5))
    # Footsteps: short filtered noise bursts ~1.7 times a second.
    steps = rng.standard_normal(n) * np.exp(-40.0 * (t % 0.6))
    steps = np.convolve(steps, np.ones(12) / 12, mode="same")
    left = 0.25 * chirp + 0.2 * melody + 0.3 * steps
    right = 0.15 * chirp + 0.3 * melody + 0.3 * np.roll(steps, rate // 50)
    return np.clip(np.stack([left, right]), -1.0, 1.0).astype(np.float32)


def _add_audio(container: av.container.OutputContainer, seconds: float):
    stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
    stream.bit_rate = 128_000
    return stream, soundtrack(seconds)


def _encode_audio(container, stream, pcm: np.ndarray, start: int, stop: int) -> int:
    """Encode samples [start, stop) in 1024-sample frames; returns where it stopped."""
    chunk = 1024
    while start + chunk <= stop or (stop == pcm.shape[1] and start < stop):
        block = np.ascontiguousarray(pcm[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        container.mux(stream.encode(frame))
        start += block.shape[1]
    return start


def _cached_clip(name: str, frames: int, force: bool, write: Callable[[av.container.OutputContainer], None]) -> Path:
    """``.cache/footage/<name>``, built once by ``write`` into a temp file, then renamed."""
    if not 1 <= frames <= VTEST_FRAMES:
        raise ValueError(f"frames must be 1..{VTEST_FRAMES}")
    dst = CACHE / name
    if dst.is_file() and not force:
        return dst
    tmp = dst.with_name(dst.stem + ".partial" + dst.suffix)
    try:
        with av.open(str(tmp), "w") as out:
            write(out)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def acceptance_clip(frames: int = 250, force: bool = False) -> Path:
    """``.cache/footage/vtest_grey_<frames>.mp4``: desaturated H.264 + AAC (built once)."""

    def write(out: av.container.OutputContainer) -> None:
        video = out.add_stream("libx264", rate=RATE, options={"crf": "18", "preset": "medium"})
        video.width, video.height, video.pix_fmt = 768, 576, "yuv420p"
        video.codec_context.time_base = Fraction(1, RATE)
        video.codec_context.color_range = RANGE_LIMITED  # as the source
        video.codec_context.colorspace = MATRIX_BT601  # SMPTE 170M: the matrix the source used
        audio, pcm = _add_audio(out, frames / RATE)
        sent = 0  # audio samples encoded so far: keep audio just ahead of video (interleaved)
        for i, frame in enumerate(frames_yuv(vtest(), frames)):
            grey = _grey(frame)
            grey.pts = i
            grey.time_base = Fraction(1, RATE)
            out.mux(video.encode(grey))
            sent = _encode_audio(out, audio, pcm, sent, (i + 1) * SAMPLE_RATE // RATE)
        out.mux(video.encode(None))
        _encode_audio(out, audio, pcm, sent, pcm.shape[1])
        out.mux(audio.encode(None))

    return _cached_clip(f"vtest_grey_{frames}.mp4", frames, force, write)


def colour_clip(frames: int = 250, force: bool = False) -> Path:
    """``.cache/footage/vtest_colour_<frames>.mkv``: the same frames in colour, FFV1 (lossless)."""

    def write(out: av.container.OutputContainer) -> None:
        video = out.add_stream("ffv1", rate=RATE)
        video.width, video.height, video.pix_fmt = 768, 576, "yuv420p"
        video.codec_context.time_base = Fraction(1, RATE)
        for i, frame in enumerate(frames_yuv(vtest(), frames)):
            frame.pts = i
            frame.time_base = Fraction(1, RATE)
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(video.encode(frame))
        out.mux(video.encode(None))

    return _cached_clip(f"vtest_colour_{frames}.mkv", frames, force, write)


def audio_packets(path: Path) -> list[bytes]:
    """The bytes of every audio packet of ``path``: equal lists mean the audio was copied untouched."""
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio) if p.size]


def plane_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit planes (vidcolor.metrics.psnr); infinite where they are identical."""
    if np.array_equal(a, b):
        return float("inf")
    return metrics.psnr_uint8(a, b)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Fetch vtest.avi and build the derived clips.")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--force", action="store_true", help="rebuild the derived clips")
    args = ap.parse_args()
    print(vtest())
    print(acceptance_clip(args.frames, args.force))
    print(colour_clip(args.frames, args.force))


if __name__ == "__main__":
    main()
