"""Still-image input and output: JPEG, PNG, TIFF and WebP, decided by content.

``read_image`` returns the picture upright (EXIF orientation applied) as a luma plane in [0, 1],
its alpha plane untouched and what is needed to write the result back in the same format and bit
depth. ``write_image`` writes an RGB(A) array atomically (temp file beside the target, renamed).

Pillow does the reading, EXIF and 8-bit writing. Pillow has no 16-bit RGB mode (it truncates
16-bit colour PNG/TIFF to 8 bits on read and cannot write them), so 16-bit colour inputs are
decoded and 16-bit outputs encoded with OpenCV, which keeps all 16 bits.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vidcolor.color import rgb_to_luma
from vidcolor.errors import InputError, OutputError
from vidcolor.media.outfile import atomic_write

# Pillow format names we read and write. MPO (a JPEG with extra pictures, as cameras write) is
# read as its first picture and written back as a plain JPEG.
FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")
# Suffixes picked up when a folder is searched; files named on the command line are judged by
# their content whatever their name.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp"})

ORIENTATION_TAG = 0x0112
# EXIF orientation -> the array operation that makes the picture upright (checked against
# PIL.ImageOps.exif_transpose in the tests).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
# TIFF compressions Pillow can write for RGB(A); anything else (group4 fax, old JPEG) -> LZW.
_TIFF_COMPRESSIONS = frozenset({"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"})
# TIFF keeps its EXIF-like tags in the image's own directory, beside the structural ones (strip
# offsets, bits per sample) that must not be copied to a file of another layout: only these
# descriptive tags are carried over (description, make, model, software, date, artist, copyright).
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
JPEG_QUALITY = 95
WEBP_QUALITY = 95


@dataclass(frozen=True)
class ImageMeta:
    """What is carried from the input to the output file besides pixels."""

    format: str  # one of FORMATS
    exif: bytes | None = None  # orientation tag already set to 1 (pixels are upright)
    icc_profile: bytes | None = None  # kept only for colour (RGB) inputs: a grey profile does not fit RGB
    dpi: tuple[float, float] | None = None
    tiff_compression: str = "tiff_lzw"
    webp_lossless: bool = False
    tiff_tags: tuple[tuple[int, object], ...] = ()  # descriptive TIFF tags, written back as they were


@dataclass
class StillImage:
    """An upright picture: luma (H, W) float32 in [0, 1], alpha (H, W) as stored, or None."""

    luma: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int  # 8 or 16: the output's depth
    colour: bool  # the input had colour; it is recoloured from its luminance
    orientation: int  # the EXIF orientation that was applied
    meta: ImageMeta = field(default_factory=lambda: ImageMeta("PNG"))

    @property
    def height(self) -> int:
        return int(self.luma.shape[0])

    @property
    def width(self) -> int:
        return int(self.luma.shape[1])


def max_pixels() -> int:
    """The largest picture read, in pixels: Pillow's decompression-bomb limit (179 Mpx by default,
    e.g. 13000×13000), above which a file is refused before it is decoded."""
    return 2 * int(Image.MAX_IMAGE_PIXELS or 0) or 1 << 62


def _looks_like_video(path: Path) -> bool:
    """A film's container signature (ISO/QuickTime, Matroska/WebM, AVI, MPEG-TS) at the file's start."""
    try:
        with path.open("rb") as fh:
            head = fh.read(189)
    except OSError:
        return False
    iso = len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
    still = iso and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")
    return (
        (iso and not still)
        or head[:4] == b"\x1aE\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:11] == b"AVI")
        or (len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47)
    )


def _not_an_image(path: Path) -> InputError:
    if _looks_like_video(path):
        return InputError(f"{path}: a video, not a picture: colour it with `vidcolor run {path} OUT`")
    return InputError(f"{path}: not an image, or a damaged one")


def sniff_format(path: Path) -> str:
    """The image format of ``path`` by content; InputError if it is not one we handle."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _supported_format(path, img)
    except Image.DecompressionBombError:
        raise InputError(f"{path}: larger than the {max_pixels() / 1e6:.0f}-megapixel limit for pictures") from None
    except UnidentifiedImageError:
        raise _not_an_image(path) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _supported_format(path: Path, img: Image.Image) -> str:
    fmt = "JPEG" if img.format == "MPO" else (img.format or "")
    if fmt not in FORMATS:
        raise InputError(f"{path}: {fmt or 'unknown'} images are not supported (JPEG, PNG, TIFF, WebP)")
    return fmt


def read_image(path: Path) -> StillImage:
    """Decode ``path`` upright. InputError for a missing, non-image, damaged or unsupported file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr) from half its limit on; below the limit a big scan is welcome.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _decode(path, img)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise _not_an_image(path) from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: larger than the {max_pixels() / 1e6:.0f}-megapixel limit for pictures") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: damaged or unreadable image ({exc})") from None


def _decode(path: Path, img: Image.Image) -> StillImage:
    fmt = _supported_format(path, img)
    if fmt != "JPEG" and getattr(img, "n_frames", 1) > 1:
        raise InputError(f"{path}: animated or multi-page images are not supported")
    pixels, depth = _pixels(path, img)  # before getexif(): that may load the image and drop its tile
    exif = img.getexif()
    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    if orientation not in _UPRIGHT:
        orientation = 1
    pixels = np.ascontiguousarray(_UPRIGHT[orientation](pixels))

    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        colour_part, alpha = pixels[..., :-1], pixels[..., -1].copy()
    else:
        colour_part, alpha = pixels, None
    scale = float((1 << depth) - 1)
    if colour_part.ndim == 2 or colour_part.shape[2] == 1:
        grey, colour = colour_part.reshape(colour_part.shape[:2]), False
    else:
        r, g, b = colour_part[..., 0], colour_part[..., 1], colour_part[..., 2]
        colour = not (np.array_equal(r, g) and np.array_equal(g, b))
        grey = None if colour else r
    if grey is not None:
        # A grey picture's luma is its value, exactly.
        luma = grey.astype(np.float32) / scale
    else:
        luma = _luma_of(colour_part, scale)

    if orientation != 1:
        exif[ORIENTATION_TAG] = 1  # the pixels are now upright: keep the tag consistent
    # An RGB profile still describes the RGB output; a grey or CMYK one would not.
    icc = img.info.get("icc_profile") if colour and img.mode in ("RGB", "RGBA", "RGBa", "P", "PA") else None
    dpi = img.info.get("dpi")
    tiff_tags: tuple[tuple[int, object], ...] = ()
    if fmt == "TIFF":
        # getexif() of a TIFF is its whole first directory: keep only the descriptive part.
        tiff_tags = tuple((tag, exif[tag]) for tag in _TIFF_DESCRIPTIVE_TAGS if tag in exif)
        exif.clear()
    try:
        exif_bytes = exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 - odd maker notes must not cost the picture: drop the metadata only
        exif_bytes = None
    meta = ImageMeta(
        format=fmt,
        exif=exif_bytes,
        tiff_tags=tiff_tags,
        icc_profile=icc or None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        tiff_compression=_tiff_compression(img.info.get("compression")),
        webp_lossless=fmt == "WEBP" and _webp_is_lossless(path),
    )
    return StillImage(luma=luma, alpha=alpha, bit_depth=depth, colour=colour, orientation=orientation, meta=meta)


def _luma_of(rgb: np.ndarray, scale: float) -> np.ndarray:
    """BT.601 luma (H,W) float32 of an (H,W,3) integer picture, a band of rows at a time: a
    float copy of a whole 12000×12000 scan would cost 1.7 GB for nothing."""
    height, width = rgb.shape[:2]
    luma = np.empty((height, width), dtype=np.float32)
    rows = max(1, (1 << 20) // max(1, width))
    for top in range(0, height, rows):
        band = torch.from_numpy(rgb[top : top + rows].astype(np.float32) / scale).permute(2, 0, 1)[None]
        luma[top : top + rows] = rgb_to_luma(band, "bt601")[0, 0].numpy()
    return luma


def _rawmode(img: Image.Image) -> str:
    if not img.tile:
        return img.mode
    args = img.tile[0].args if hasattr(img.tile[0], "args") else img.tile[0][3]
    return str(args[0] if isinstance(args, tuple) else args)


def _pixels(path: Path, img: Image.Image) -> tuple[np.ndarray, int]:
    """Pixel array (H, W[, C]) in file orientation and its bit depth (8 or 16)."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16), 16
    if "16" in _rawmode(img) and mode in ("RGB", "RGBA", "LA"):
        return _pixels_opencv(path), 16
    if mode == "I":
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{path}: 32-bit integer images are not supported (8 or 16 bits)")
        return arr.astype(np.uint16), 16
    if mode == "F":
        raise InputError(f"{path}: floating-point images are not supported (8 or 16 bits)")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(img), 8
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB")), 8
    if mode in ("La", "RGBa"):
        return np.asarray(img.convert(mode.upper())), 8
    if mode == "1":
        return np.asarray(img.convert("L")), 8
    # CMYK, YCbCr, LAB, HSV: Pillow converts to RGB.
    return np.asarray(img.convert("RGB")), 8


def _pixels_opencv(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # keeps 16 bits and alpha, ignores EXIF
    if arr is None:
        raise InputError(f"{path}: damaged or unreadable 16-bit image")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def _tiff_compression(name: object) -> str:
    return name if isinstance(name, str) and name in _TIFF_COMPRESSIONS else "tiff_lzw"


def _webp_is_lossless(path: Path) -> bool:
    """True when the first image chunk of a WebP file is VP8L (lossless); walks the RIFF chunks."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return False
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return False
            fourcc, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if fourcc in (b"VP8 ", b"VP8L"):
                return fourcc == b"VP8L"
            f.seek(size + (size & 1), os.SEEK_CUR)


# ----------------------------------------------------------------------------------------- output


def read_guide_picture(
    path: Path, size: tuple[int, int], mode: str, what: str, expected: str
) -> tuple[np.ndarray, bool]:
    """A picture a person made to guide the colour (a hints layer, a reference frame) -> its pixels
    (H,W,C) uint8 in Pillow ``mode`` and whether the file had transparency. It must be exactly
    ``size`` (width, height); ``what`` names it and ``expected`` says what it must match (with that
    size), in the one-line InputError for a wrong size, an oversized or an unreadable file."""
    try:
        with Image.open(path) as img:
            if img.size != size:
                raise InputError(f"{path}: {what} is {img.size[0]}x{img.size[1]}, {expected}; they must match")
            had_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            return np.array(img.convert(mode)), had_alpha
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{path}: {what} larger than the picture-size limit") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable {what} ({exc.__class__.__name__})") from None


def write_image(
    path: Path, rgb: np.ndarray, alpha: np.ndarray | None, meta: ImageMeta, overwrite: bool = False
) -> None:
    """Write RGB (H, W, 3) uint8/uint16 (+ alpha) to ``path`` in ``meta.format``, atomically.

    16-bit data is written as 16-bit PNG or TIFF. Without ``overwrite`` an existing ``path``
    is never replaced, even one that appears while this runs.
    """
    pixels = rgb if alpha is None else np.dstack([rgb, alpha.astype(rgb.dtype)])
    if rgb.dtype == np.uint16:
        if meta.format not in ("PNG", "TIFF"):
            raise OutputError(f"{path}: 16-bit images can only be written as PNG or TIFF")
        encoded = _encode_16bit(pixels, meta)
        atomic_write(path, lambda f: f.write(encoded), overwrite)
        return
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB" if alpha is None else "RGBA")
    params: dict[str, object] = {}
    if meta.exif:
        params["exif"] = meta.exif
    if meta.icc_profile:
        params["icc_profile"] = meta.icc_profile
    if meta.dpi:
        params["dpi"] = meta.dpi
    if meta.format == "JPEG":
        if alpha is not None:  # cannot happen for a JPEG input; guard against misuse
            raise OutputError(f"{path}: JPEG has no alpha channel")
        params.update(quality=JPEG_QUALITY)
    elif meta.format == "WEBP":
        if meta.webp_lossless:
            params.update(lossless=True)
        else:
            params.update(quality=WEBP_QUALITY)
    elif meta.format == "TIFF":
        params.update(compression=meta.tiff_compression)
        if meta.tiff_tags:
            params.update(tiffinfo=dict(meta.tiff_tags))
    atomic_write(path, lambda f: image.save(f, format=meta.format, **params), overwrite)


def _encode_16bit(pixels: np.ndarray, meta: ImageMeta) -> bytes:
    if pixels.shape[2] == 3:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    else:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    if meta.format == "PNG":
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise OutputError("OpenCV could not encode the 16-bit PNG")
        return _png_with_metadata(buf.tobytes(), meta)
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 5]  # LZW: lossless, as every 16-bit TIFF should be
    if meta.dpi:
        params += [
            cv2.IMWRITE_TIFF_RESUNIT,
            2,
            cv2.IMWRITE_TIFF_XDPI,
            round(meta.dpi[0]),
            cv2.IMWRITE_TIFF_YDPI,
            round(meta.dpi[1]),
        ]
    ok, buf = cv2.imencode(".tiff", bgr, params)
    if not ok:
        raise OutputError("OpenCV could not encode the 16-bit TIFF")
    return buf.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_metadata(png: bytes, meta: ImageMeta) -> bytes:
    """Insert iCCP, pHYs and eXIf chunks right after IHDR (OpenCV writes none of them)."""
    chunks = b""
    if meta.icc_profile:
        chunks += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(meta.icc_profile))
    if meta.dpi:
        ppm = [max(1, round(d / 0.0254)) for d in meta.dpi]
        chunks += _png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))
    if meta.exif:
        exif = meta.exif[6:] if meta.exif.startswith(b"Exif\x00\x00") else meta.exif
        chunks += _png_chunk(b"eXIf", exif)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return png[:ihdr_end] + chunks + png[ihdr_end:]
