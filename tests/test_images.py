"""Still-image library: reading (orientation, depth, alpha, formats by content), colour math, jobs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from vidcolor.color import ycbcr_to_rgb
from vidcolor.colorizer import Colorizer
from vidcolor.compose import fit_chroma_to_gamut
from vidcolor.errors import InputError, OutputError
from vidcolor.media.images import read_image
from vidcolor.media.outfile import atomic_write
from vidcolor.settings import RenderConfig
from vidcolor.stills import (
    collect_images,
    colorize_image_file,
    colorize_images,
    plan_outputs,
)

W601 = np.array([0.299, 0.587, 0.114])


def luma_of(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ W601


def grey_pattern(h: int, w: int, top: int = 255, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: varied luma, and JPEG-friendly enough for loose checks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    v = 0.15 + 0.6 * xx / max(1, w - 1) + 0.2 * yy / max(1, h - 1) + rng.normal(0, 0.02, (h, w))
    return (np.clip(v, 0, 1) * top).round().astype(np.uint16 if top > 255 else np.uint8)


def read_any(path: Path) -> np.ndarray:
    """All bits and channels as stored (RGB order), ignoring EXIF."""
    arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return arr


def chroma_energy(rgb: np.ndarray) -> float:
    rgb = rgb[..., :3].astype(np.float64)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())


@pytest.fixture(scope="module")
def colorizer(tiny_model) -> Colorizer:
    return Colorizer(tiny_model, RenderConfig(render_factor=4, batch_size=4, device="cpu"), video=False)


# --------------------------------------------------------------------------------- colour math


def test_fit_chroma_to_gamut_keeps_luma_exact_and_rgb_in_range():
    g = torch.Generator().manual_seed(1)
    luma = torch.rand(2, 1, 16, 16, generator=g)
    chroma = (torch.rand(2, 2, 16, 16, generator=g) - 0.5) * 1.2  # much of it out of gamut
    fitted = fit_chroma_to_gamut(luma, chroma)
    kr, kg, kb = 0.299, 0.587, 0.114
    cb, cr = fitted[:, 0:1], fitted[:, 1:2]
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    gg = (luma - kr * r - kb * b) / kg
    rgb = torch.cat([r, gg, b], 1)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5  # in gamut before any clamping
    composed = ycbcr_to_rgb(luma, fitted)
    y = kr * composed[:, 0:1] + kg * composed[:, 1:2] + kb * composed[:, 2:3]
    assert torch.allclose(y, luma, atol=1e-5)
    # Chroma only shrinks (same hue), and in-gamut chroma is left alone.
    ratio = fitted.norm(dim=1) / chroma.norm(dim=1).clamp_min(1e-9)
    assert ratio.max() <= 1 + 1e-6 and ratio.min() < 0.9
    small = chroma * 0.01
    assert torch.allclose(fit_chroma_to_gamut(torch.full_like(luma, 0.5), small), small)


# --------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    arr = grey_pattern(12, 20, seed=orientation)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    img.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    got = read_image(path)
    assert got.orientation == orientation
    np.testing.assert_array_equal((got.luma * 255).round().astype(np.uint8), expected)


def test_read_decides_format_by_content(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    Image.fromarray(grey_pattern(8, 8)).save(path, format="PNG")
    assert read_image(path).meta.format == "PNG"
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InputError, match="not an image"):
        read_image(text)
    gif = tmp_path / "anim.gif"
    Image.fromarray(grey_pattern(8, 8)).save(gif)
    with pytest.raises(InputError, match="GIF images are not supported"):
        read_image(gif)


def test_sixteen_bit_colour_png_read_with_all_bits(tmp_path):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 65536, (10, 14, 4), dtype=np.uint16)
    path = tmp_path / "c16.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    img = read_image(path)
    assert img.bit_depth == 16 and img.colour
    np.testing.assert_array_equal(img.alpha, rgba[..., 3])
    np.testing.assert_allclose(img.luma, luma_of(rgba) / 65535, atol=1e-6)


# ---------------------------------------------------------------------------------- colorizing


def test_grey_png_keeps_luma_and_gains_colour(tmp_path, colorizer):
    src = tmp_path / "in" / "g.png"
    src.parent.mkdir()
    grey = grey_pattern(48, 72)
    Image.fromarray(grey).save(src)
    before = src.read_bytes()
    result = colorize_image_file(src, tmp_path / "out" / "g.png", colorizer)
    out = read_any(result.output)
    assert src.read_bytes() == before  # input untouched
    assert out.shape == (48, 72, 3) and out.dtype == np.uint8
    assert np.abs(luma_of(out) - grey).max() <= 0.5 + 1e-6  # rounding to 8 bits only
    assert chroma_energy(out) > 1.0
    assert result.ok and result.format == "PNG" and not result.recoloured
    assert not list(result.output.parent.glob("*.partial")) and not list(result.output.parent.glob(".*"))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_grey_stays_sixteen_bit(tmp_path, colorizer, fmt):
    grey = grey_pattern(40, 56, top=65535)
    suffix = ".png" if fmt == "PNG" else ".tif"
    src = tmp_path / f"g16{suffix}"
    Image.fromarray(grey).save(src, dpi=(300, 300))
    assert Image.open(src).mode.startswith("I;16")
    result = colorize_image_file(src, tmp_path / "out" / src.name, colorizer)
    out = read_any(result.output)
    assert out.dtype == np.uint16 and out.shape == (40, 56, 3)
    assert result.bit_depth == 16 and Image.open(result.output).format == fmt
    assert np.abs(luma_of(out) - grey).max() <= 0.5 + 1e-3  # one rounding step of 16 bits
    assert chroma_energy(out) > 256
    dpi = Image.open(result.output).info.get("dpi")
    assert dpi is not None and round(float(dpi[0])) == 300


def test_alpha_is_copied_untouched(tmp_path, colorizer):
    grey = grey_pattern(30, 50)
    alpha = np.random.default_rng(5).integers(0, 256, (30, 50), dtype=np.uint8)
    src = tmp_path / "la.png"
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(src)
    result = colorize_image_file(src, tmp_path / "out" / "la.png", colorizer)
    out = read_any(result.output)
    assert out.shape == (30, 50, 4) and result.alpha
    np.testing.assert_array_equal(out[..., 3], alpha)
    assert np.abs(luma_of(out) - grey).max() <= 0.5 + 1e-6


def test_sixteen_bit_colour_with_alpha_is_recoloured(tmp_path, colorizer):
    rng = np.random.default_rng(7)
    rgb = np.dstack([grey_pattern(24, 32, top=65535, seed=s) for s in range(3)])
    alpha = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    src = tmp_path / "c16.tif"
    cv2.imwrite(str(src), cv2.cvtColor(np.dstack([rgb, alpha]), cv2.COLOR_RGBA2BGRA))
    result = colorize_image_file(src, tmp_path / "out" / "c16.tif", colorizer)
    out = read_any(result.output)
    assert result.recoloured and out.dtype == np.uint16 and out.shape == (24, 32, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)
    assert np.abs(luma_of(out) - luma_of(rgb)).max() <= 0.5 + 1e-3


def test_jpeg_exif_orientation_6_is_made_upright(tmp_path, colorizer):
    stored = grey_pattern(40, 64)  # as stored: 64 wide, 40 high; bright on the right
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    exif[0x010F] = "vidcolor test camera"
    src = tmp_path / "cam.jpg"
    img.save(src, exif=exif, quality=98)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src))).astype(np.float64)
    result = colorize_image_file(src, tmp_path / "out" / "cam.jpg", colorizer)
    out_img = Image.open(result.output)
    assert out_img.format == "JPEG" and out_img.size == (40, 64)  # width, height: turned upright
    assert out_img.getexif().get(0x0112, 1) == 1  # tag consistent with upright pixels
    assert out_img.getexif().get(0x010F) == "vidcolor test camera"  # the rest of EXIF kept
    out = np.asarray(out_img)
    assert np.abs(luma_of(out) - upright).mean() < 2.0  # JPEG re-encoding only
    assert result.orientation == 6 and chroma_energy(out) > 1.0


def test_lossless_webp_stays_lossless_webp(tmp_path, colorizer):
    grey = grey_pattern(32, 48)
    src = tmp_path / "w.webp"
    Image.fromarray(grey).convert("RGB").save(src, lossless=True)
    result = colorize_image_file(src, tmp_path / "out" / "w.webp", colorizer)
    assert Image.open(result.output).format == "WEBP"
    assert b"VP8L" in result.output.read_bytes()[:64]
    out = np.asarray(Image.open(result.output).convert("RGB"))
    assert np.abs(luma_of(out) - grey).max() <= 0.5 + 1e-6
    assert not result.recoloured  # grey stored as RGB is still grey


def test_batched_equals_one_by_one(tmp_path, colorizer):
    sizes = [(40, 60), (40, 60), (41, 59), (64, 30), (40, 60), (20, 20)]
    jobs = []
    for i, (h, w) in enumerate(sizes):
        src = tmp_path / f"i{i}.png"
        Image.fromarray(grey_pattern(h, w, seed=i)).save(src)
        jobs.append((src, tmp_path / "batched" / src.name))
    results = list(colorize_images(jobs, colorizer))
    assert len(results) == len(sizes) and all(r.ok for r in results)
    for src, dst in jobs:
        single = colorize_image_file(src, tmp_path / "single" / src.name, colorizer)
        diff = np.abs(read_any(dst).astype(int) - read_any(single.output).astype(int))
        assert diff.max() <= 1


def test_bad_file_in_a_batch_is_reported_and_others_go_on(tmp_path, colorizer):
    good = tmp_path / "a.png"
    Image.fromarray(grey_pattern(16, 16)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    results = {
        r.source.name: r
        for r in colorize_images([(good, tmp_path / "o" / "a.png"), (bad, tmp_path / "o" / "b.png")], colorizer)
    }
    assert results["a.png"].ok and results["a.png"].output.exists()
    assert not results["b.png"].ok and "b.png" in results["b.png"].error
    assert not (tmp_path / "o" / "b.png").exists()


def test_existing_output_and_input_are_never_clobbered(tmp_path, colorizer):
    src = tmp_path / "a.png"
    Image.fromarray(grey_pattern(16, 16)).save(src)
    before = src.read_bytes()
    with pytest.raises(OutputError, match="is the input"):
        colorize_image_file(src, tmp_path / "." / "a.png", colorizer, overwrite=True)
    assert src.read_bytes() == before
    dst = tmp_path / "out.png"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        colorize_image_file(src, dst, colorizer)
    assert dst.read_bytes() == b"keep me"
    colorize_image_file(src, dst, colorizer, overwrite=True)
    assert Image.open(dst).mode == "RGB"


def test_failed_write_leaves_nothing(tmp_path):
    dst = tmp_path / "x.png"

    def boom(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OutputError, match="disk full"):
        atomic_write(dst, boom)
    assert list(tmp_path.iterdir()) == []
    dst.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        atomic_write(dst, lambda f: f.write(b"new"))
    assert dst.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


# ------------------------------------------------------------------------------------ collecting


def test_collect_folders_globs_and_files(tmp_path, monkeypatch):
    root = tmp_path / "scans"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for rel in ["a.png", "sub/b.JPG", "sub/deeper/c.tif", ".hidden/h.png", "sub/._b.jpg"]:
        (root / rel).write_bytes(b"x")
    (root / "notes.txt").write_text("no")
    loose = tmp_path / "loose.webp"
    loose.write_bytes(b"x")
    pairs = collect_images([str(root), str(loose)])
    assert [(s.relative_to(tmp_path).as_posix(), r.as_posix()) for s, r in pairs] == [
        ("scans/a.png", "a.png"),
        ("scans/sub/b.JPG", "sub/b.JPG"),
        ("scans/sub/deeper/c.tif", "sub/deeper/c.tif"),
        ("loose.webp", "loose.webp"),
    ]
    monkeypatch.chdir(tmp_path)
    pairs = collect_images(["scans/**/*.tif", "scans/*.txt"])
    assert [r.as_posix() for _, r in pairs] == ["sub/deeper/c.tif", "notes.txt"]
    with pytest.raises(InputError, match="no file matches"):
        collect_images(["scans/*.bmp"])
    with pytest.raises(InputError, match="no such file"):
        collect_images(["missing.png"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.png").write_bytes(b"x")
    with pytest.raises(InputError, match="would both be written"):
        collect_images(["scans", "other"])


def test_plan_outputs_refuses_clobbering(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="would overwrite an input"):
        plan_outputs([(src, Path("a.png"))], tmp_path, overwrite=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        plan_outputs([(src, Path("a.png"))], out)
    assert plan_outputs([(src, Path("a.png"))], out, overwrite=True) == [(src, out / "a.png")]


def test_tiff_orientation_and_descriptive_tags(tmp_path, colorizer):
    stored = grey_pattern(20, 44)
    src = tmp_path / "scan.tif"
    Image.fromarray(stored).save(src, tiffinfo={274: 8, 315: "An Archivist", 270: "plate 12"}, compression="tiff_lzw")
    result = colorize_image_file(src, tmp_path / "out" / "scan.tif", colorizer)
    out = Image.open(result.output)
    assert out.format == "TIFF" and out.size == (20, 44) and out.mode == "RGB"
    tags = out.tag_v2
    assert tags.get(274, 1) == 1 and tags.get(315) == "An Archivist" and tags.get(270) == "plate 12"
    assert out.info.get("compression") == "tiff_lzw"
    upright = np.rot90(stored, 1)
    assert np.abs(luma_of(np.asarray(out)) - upright).max() <= 0.5 + 1e-6


def test_cmyk_jpeg_is_recoloured_as_rgb(tmp_path, colorizer):
    rgb = np.dstack([grey_pattern(24, 32, seed=s) for s in range(3)])
    src = tmp_path / "print.jpg"
    Image.fromarray(rgb).convert("CMYK").save(src, quality=95)
    assert Image.open(src).mode == "CMYK"
    result = colorize_image_file(src, tmp_path / "out" / "print.jpg", colorizer)
    out = Image.open(result.output)
    assert result.recoloured and out.mode == "RGB" and out.format == "JPEG"
    assert out.info.get("icc_profile") is None


def test_band_upsample_equals_the_whole_upsample():
    from vidcolor.compose import upsample_chroma, upsample_chroma_rows, widen_chroma

    torch.manual_seed(0)
    small = torch.randn(1, 2, 17, 23)
    full = upsample_chroma(small, (301, 407))
    wide = widen_chroma(small, 407)
    bands = torch.cat([upsample_chroma_rows(wide, 301, top, min(301, top + 37)) for top in range(0, 301, 37)], dim=-2)
    assert torch.allclose(bands, full, atol=1e-5)


def test_banded_compose_and_scores_equal_the_whole_picture_ones(monkeypatch, tiny_model):
    # Item 8 of the reliability issue: huge pictures are composed and scored band by band, with
    # the same result as composing and scoring the whole picture at once.
    import vidcolor.compose as compose
    from vidcolor.evaluation.images import score_image
    from vidcolor.metrics import colourfulness, mean_ciede2000, psnr

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    truth = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    colorizer = Colorizer(tiny_model, RenderConfig(render_factor=4), video=False)
    luma = (torch.from_numpy(luma_of(rgb).astype(np.float32)) / 255.0)[None, None]
    luma = (luma * 255.0).round() / 255.0
    _, chroma = colorizer.colorize(luma)
    whole = compose.compose_image(luma, chroma, 8)
    pred = torch.from_numpy(whole).permute(2, 0, 1)[None].float() / 255.0
    grey = luma.expand(-1, 3, -1, -1)
    expected = {
        "psnr": psnr(pred, truth),
        "psnr_gray": psnr(grey, truth),
        "ciede2000": mean_ciede2000(pred, truth),
        "ciede2000_gray": mean_ciede2000(grey, truth),
        "colourfulness": colourfulness(pred),
        "colourfulness_truth": colourfulness(truth),
    }
    monkeypatch.setattr(compose, "BAND_PIXELS", 700)  # bands of 5 rows
    assert compose.band_rows(130) == 5
    assert np.array_equal(compose.compose_image(luma, chroma, 8), whole)
    banded = score_image(rgb, colorizer)
    for name, value in expected.items():
        assert getattr(banded, name) == pytest.approx(float(value[0]), rel=1e-4, abs=1e-4), name


def test_colour_strength_scales_the_models_colour_only(tiny_hint_model_path):
    """--colour-strength: 0 gives grey chroma, 2 twice the model's; a hinted pixel keeps its hint."""
    from vidcolor.hints import hint_planes, hints_from_points, parse_hint
    from vidcolor.models.registry import load_model
    from vidcolor.settings import RenderConfig

    model = load_model(str(tiny_hint_model_path))
    luma = torch.rand(1, 1, 64, 64)
    base = Colorizer(model, RenderConfig(), video=False)
    small = base.prepare(luma)
    chroma = base.predict(small)
    for strength in (0.0, 0.5, 2.0):
        got = Colorizer(model, RenderConfig(colour_strength=strength), video=False).predict(small)
        torch.testing.assert_close(got, chroma * strength)
    planes = hint_planes([hints_from_points((parse_hint("32,32,#c03020"),), 64, 64)], tuple(small.shape[-2:]))
    hinted = [
        Colorizer(model, RenderConfig(colour_strength=s), video=False).predict(small, hints=planes) for s in (1, 0)
    ]
    mask = planes[:, 2:3].expand(-1, 2, -1, -1) > 0
    torch.testing.assert_close(hinted[0][mask], hinted[1][mask])  # the person's colour is never scaled
    with pytest.raises(InputError, match="colour-strength"):
        RenderConfig(colour_strength=3)
