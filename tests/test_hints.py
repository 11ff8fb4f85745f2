"""Colour hints (issue 17): parsing, the render-size planes, `vidcolor image --hints/--hint`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vidcolor.cli import app
from vidcolor.colorizer import Colorizer
from vidcolor.errors import InputError
from vidcolor.hints import POINT_PATCH, HintPoint, Hints, hint_planes, hints_from_points, parse_hint, read_hint_picture
from vidcolor.models.generator import AB_SCALE
from vidcolor.models.registry import load_model
from vidcolor.settings import RenderConfig, RunSettings
from vidcolor.video.anchors import AnchorFiles  # noqa: I001

runner = CliRunner()
H, W = 96, 128  # the test picture (render factor 7: 112² pixels, about 96x128)


def grey_picture(path: Path, h: int = H, w: int = W) -> Path:
    """Textured quadrants of very different brightness (20, 230 / 230, 150): hints spread within
    similar brightness, so a quadrant far in brightness from every hint should barely change."""
    yy, xx = np.mgrid[0:h, 0:w]
    level = np.where(yy < h // 2, np.where(xx < w // 2, 20, 230), np.where(xx < w // 2, 230, 150))
    Image.fromarray((level + 8 * np.sin(xx / 5.0) * np.cos(yy / 4.0)).astype(np.uint8)).save(path)
    return path


def hints_picture(
    path: Path, h: int = H, w: int = W, box: tuple[int, int, int, int] | None = (10, 10, 26, 26), colour=(220, 30, 30)
) -> Path:
    rgba = np.zeros((h, w, 4), np.uint8)
    if box is not None:
        y0, x0, y1, x1 = box
        rgba[y0:y1, x0:x1, :3] = colour
        rgba[y0:y1, x0:x1, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_parse_hint_forms_and_errors():
    assert parse_hint("12,34,#ff8000") == HintPoint(12, 34, (255, 128, 0))
    assert parse_hint(" 1 , 2 , 00ff00 ") == HintPoint(1, 2, (0, 255, 0))
    for bad in ("12,34", "a,b,#ffffff", "1,2,#fff", "1,2,#gg0000", "-1,2,#ffffff"):
        with pytest.raises(InputError, match="X,Y,#RRGGBB"):
            parse_hint(bad)


def test_point_outside_picture_refused():
    with pytest.raises(InputError, match="outside the 128x96 picture"):
        hints_from_points([HintPoint(128, 0, (0, 0, 0))], H, W)


def test_planes_put_a_point_where_it_belongs_with_its_chroma():
    hints = hints_from_points([HintPoint(x=100, y=20, rgb=(255, 0, 0))], H, W)
    planes = hint_planes([hints], (48, 64))  # half size
    ys, xs = torch.nonzero(planes[0, 2], as_tuple=True)
    assert len(ys) == POINT_PATCH**2 and ys.float().mean() == 10 and xs.float().mean() == 50
    a, b = planes[0, 0, 10, 50] * AB_SCALE, planes[0, 1, 10, 50] * AB_SCALE
    assert a == pytest.approx(80.1, abs=0.5) and b == pytest.approx(67.2, abs=0.5)  # sRGB red in CIE Lab


def test_painted_pixels_average_per_render_pixel():
    ys, xs = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    rgb = np.array([[255, 0, 0], [255, 0, 0], [0, 0, 255], [0, 0, 255]], np.uint8)
    planes = hint_planes([Hints(4, 4, ys, xs, rgb)], (2, 2))  # the four pixels share one render pixel
    assert planes[0, 2].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    red_blue = hint_planes([Hints(1, 2, np.array([0, 0]), np.array([0, 1]), rgb[1:3])], (1, 1))
    assert red_blue[0, 0, 0, 0] * AB_SCALE == pytest.approx((80.1 + 79.2) / 2, abs=0.5)


def test_hints_picture_checks(tmp_path):
    assert len(read_hint_picture(hints_picture(tmp_path / "h.png"), H, W)) == 16 * 16
    assert len(read_hint_picture(hints_picture(tmp_path / "none.png", box=None), H, W)) == 0
    with pytest.raises(InputError, match="hints picture is 128x96, the picture it guides is 120x96"):
        read_hint_picture(tmp_path / "h.png", H, 120)
    Image.new("RGB", (W, H)).save(tmp_path / "opaque.png")
    with pytest.raises(InputError, match="no transparency"):
        read_hint_picture(tmp_path / "opaque.png", H, W)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable hints picture"):
        read_hint_picture(tmp_path / "junk.png", H, W)


def cli(tmp_path: Path, model: Path, *extra: str, name: str = "out"):
    result = runner.invoke(
        app,
        [
            "image",
            str(tmp_path / "pic.png"),
            "-o",
            str(tmp_path / name),
            "--model",
            str(model),
            "--render-factor",
            "7",
            "--device",
            "cpu",
            "--backend",
            "eager",
            "--quiet",
            *extra,
        ],
    )
    return result


def chroma_of(path: Path) -> np.ndarray:
    ycc = np.asarray(Image.open(path).convert("YCbCr")).astype(np.float32)
    return ycc[..., 1:] - 128.0


def test_image_follows_a_hint_near_it_and_little_far_away(tmp_path, tiny_hint_model_path):
    grey_picture(tmp_path / "pic.png")
    hints_picture(tmp_path / "h.png")
    assert cli(tmp_path, tiny_hint_model_path, name="auto").exit_code == 0
    result = cli(tmp_path, tiny_hint_model_path, "--hints", str(tmp_path / "h.png"), name="hinted")
    assert result.exit_code == 0, result.output
    diff = np.abs(chroma_of(tmp_path / "hinted/pic.png") - chroma_of(tmp_path / "auto/pic.png")).sum(-1)
    near, far = diff[10:26, 10:26].mean(), diff[60:, 80:].mean()  # the hinted quadrant, the opposite one
    assert near > 5.0 and near > 10 * far, (near, far)


def test_point_hints_and_transparent_picture(tmp_path, tiny_hint_model_path):
    grey_picture(tmp_path / "pic.png")
    hints_picture(tmp_path / "clear.png", box=None)
    assert cli(tmp_path, tiny_hint_model_path, name="auto").exit_code == 0
    assert cli(tmp_path, tiny_hint_model_path, "--hints", str(tmp_path / "clear.png"), name="clear").exit_code == 0
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "clear/pic.png")), np.asarray(Image.open(tmp_path / "auto/pic.png"))
    )
    result = cli(tmp_path, tiny_hint_model_path, "--hint", "20,70,#2040e0", "--hint", "100,20,#20c020", name="points")
    assert result.exit_code == 0, result.output
    diff = np.abs(chroma_of(tmp_path / "points/pic.png") - chroma_of(tmp_path / "auto/pic.png")).sum(-1)
    assert diff[62:78, 12:28].mean() > 10 * diff[8:40, 8:56].mean()  # around a point; a quadrant without one


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--hint", "1,2,red"], "write X,Y,#RRGGBB"),
        (["--hint", "500,2,#ff0000"], "outside the 128x96 picture"),
        (["--hints", "missing.png"], "no such hints picture"),
    ],
)
def test_bad_hints_are_one_line_errors(tmp_path, tiny_hint_model_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    grey_picture(tmp_path / "pic.png")
    result = cli(tmp_path, tiny_hint_model_path, *extra)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "pic.png").exists()


def test_size_mismatch_and_several_pictures_refused(tmp_path, tiny_hint_model_path):
    grey_picture(tmp_path / "pic.png")
    hints_picture(tmp_path / "small.png", h=50, w=60)
    result = cli(tmp_path, tiny_hint_model_path, "--hints", str(tmp_path / "small.png"))
    assert result.exit_code == 2 and "60x50, the picture it guides is 128x96" in result.output
    grey_picture(tmp_path / "two.png")
    result = runner.invoke(
        app,
        [
            "image",
            str(tmp_path / "pic.png"),
            str(tmp_path / "two.png"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            str(tiny_hint_model_path),
            "--hint",
            "1,1,#ff0000",
            "--quiet",
        ],
    )
    assert result.exit_code == 2 and "guide one picture; 2 were given" in result.output


def test_models_without_hints_refuse_them(tmp_path, tiny_model_path):
    grey_picture(tmp_path / "pic.png")
    result = cli(tmp_path, tiny_model_path, "--hint", "1,1,#ff0000")
    assert result.exit_code == 2 and "takes no colour hints" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_onnx_backend_takes_hints_like_eager(tiny_hint_model_path):
    pytest.importorskip("onnxruntime")
    luma = torch.rand(1, 1, 64, 96)
    planes = hint_planes([hints_from_points([HintPoint(30, 20, (200, 40, 40))], 64, 96)], (64, 96))
    eager = Colorizer(load_model(str(tiny_hint_model_path)), RenderConfig(backend="eager", device="cpu"))
    onnx = Colorizer(load_model(str(tiny_hint_model_path)), RenderConfig(backend="onnx", device="cpu"))
    for hints in (None, planes):
        a, b = eager.predict(luma, hints=hints), onnx.predict(luma, hints=hints)
        assert torch.allclose(a, b, atol=1e-3), (hints is None, float((a - b).abs().max()))
    assert not torch.allclose(eager.predict(luma), eager.predict(luma, hints=planes), atol=1e-3)


def test_eval_hint_points_from_the_truth(tmp_path, tiny_hint_model_path, tiny_model_path):
    from vidcolor.evaluation.images import evaluate_images

    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / f"c{i}.png")
    paths = sorted(tmp_path.glob("*.png"))
    render = RenderConfig(render_factor=4, device="cpu", backend="eager")
    auto = evaluate_images(paths, load_model(str(tiny_hint_model_path)), render)
    hinted = evaluate_images(paths, load_model(str(tiny_hint_model_path)), render, hint_points=10)
    again = evaluate_images(paths[::-1], load_model(str(tiny_hint_model_path)), render, hint_points=10)
    assert hinted.hint_points == 10 and hinted.to_dict()["hint_points"] == 10
    assert [s.psnr for s in hinted.images] != [s.psnr for s in auto.images]
    assert sorted(s.psnr for s in hinted.images) == sorted(s.psnr for s in again.images)  # seeded per file
    with pytest.raises(InputError, match="takes no colour hints"):
        evaluate_images(paths, load_model(str(tiny_model_path)), render, hint_points=10)


def test_hint_pictures_follow_the_anchor_naming_rule(tmp_path):
    from vidcolor.video.anchors import anchor_pictures

    for name in ("000012.png", "frame-3.png", "notes.txt", "shot0002_frame000040_t1.600s.png"):
        (tmp_path / name).write_bytes(b"")
    found = anchor_pictures([tmp_path], "hints")
    assert found == {
        12: tmp_path / "000012.png",
        3: tmp_path / "frame-3.png",
        40: tmp_path / "shot0002_frame000040_t1.600s.png",
    }
    (tmp_path / "f12-again.png").write_bytes(b"")
    with pytest.raises(InputError, match="both hints pictures for frame 12"):
        anchor_pictures([tmp_path], "hints")
    with pytest.raises(InputError, match="no such hints file or folder"):
        anchor_pictures([tmp_path / "missing"], "hints")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no hints picture"):
        anchor_pictures([tmp_path / "empty"], "hints")


def test_one_name_means_one_frame_for_hints_and_references(tmp_path):
    """The same file name names the same frame whichever kind of anchor it is."""
    from vidcolor.video.anchors import anchor_pictures

    names = ["000120.png", "frame-7.png", "shot0003_frame000120_t4.800s.png", "frame_0099_take2.png", "12.png"]
    for name in names:
        folder = tmp_path / name.removesuffix(".png")
        folder.mkdir()
        (folder / name).write_bytes(b"")
        assert anchor_pictures([folder], "hints") == anchor_pictures([folder], "reference")
    (tmp_path / "two-numbers-3-4.png").write_bytes(b"")
    for kind in ("hints", "reference"):
        with pytest.raises(InputError, match="cannot tell which frame"):
            anchor_pictures([tmp_path / "two-numbers-3-4.png"], kind)


def test_film_hinted_frame_is_an_anchor_carried_on(make_clip, tiny_hint_model_path, tiny_model_path, tmp_path):
    from vidcolor.settings import EncodeConfig, RenderConfig, TemporalConfig
    from vidcolor.video.run import colorize_video

    src = make_clip(tmp_path / "film.mkv", frames=8, width=128, height=96, audio=False, codec="ffv1")
    (tmp_path / "hints").mkdir()
    hints_picture(tmp_path / "hints" / "000002.png", box=(20, 30, 60, 90), colour=(230, 40, 30))
    render = RenderConfig(render_factor=6, batch_size=4, device="cpu", backend="eager")
    encode = EncodeConfig(codec="ffv1")
    temporal = TemporalConfig(strength=0.8)
    model = load_model(str(tiny_hint_model_path))
    colorize_video(src, tmp_path / "auto.mkv", model, RunSettings(render=render, temporal=temporal, encode=encode))
    report = colorize_video(
        src,
        tmp_path / "hinted.mkv",
        model,
        RunSettings(render=render, temporal=temporal, encode=encode),
        anchors=AnchorFiles(hints={2: tmp_path / "hints" / "000002.png"}),
    )
    assert report.settings["hinted_frames"] == [2]

    def rgb_frames(path):
        import av

        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]

    auto, hinted = rgb_frames(tmp_path / "auto.mkv"), rgb_frames(tmp_path / "hinted.mkv")
    change = [float(np.abs(a - b).mean()) for a, b in zip(auto, hinted)]
    assert change[2] > 0.5 and change[3] > 0.2 * change[2]  # the anchor, and its colour carried on
    assert change[1] > 0.2 * change[2]  # and back over the look-ahead
    # Forward only (no look-ahead): nothing before the hinted frame changes.
    one_way = TemporalConfig(strength=0.8, lookahead=0)
    colorize_video(src, tmp_path / "auto1.mkv", model, RunSettings(render=render, temporal=one_way, encode=encode))
    colorize_video(
        src,
        tmp_path / "hinted1.mkv",
        model,
        RunSettings(render=render, temporal=one_way, encode=encode),
        anchors=AnchorFiles(hints={2: tmp_path / "hints" / "000002.png"}),
    )
    change = [
        float(np.abs(a - b).mean())
        for a, b in zip(rgb_frames(tmp_path / "auto1.mkv"), rgb_frames(tmp_path / "hinted1.mkv"))
    ]
    assert change[0] == change[1] == 0.0 and change[2] > 0.5 and change[3] > 0.2 * change[2]
    # Past the end: refused up front where the container counts its frames (MP4), else a warning.
    mp4 = make_clip(tmp_path / "film.mp4", frames=8, width=128, height=96, audio=False)
    with pytest.raises(InputError, match="past the film's end"):
        colorize_video(
            mp4,
            tmp_path / "x.mkv",
            model,
            RunSettings(render=render, temporal=temporal, encode=encode),
            anchors=AnchorFiles(hints={8: tmp_path / "hints" / "000002.png"}),
        )
    late = colorize_video(
        src,
        tmp_path / "late.mkv",
        model,
        RunSettings(render=render, temporal=temporal, encode=encode),
        anchors=AnchorFiles(hints={9: tmp_path / "hints" / "000002.png"}),
    )
    assert any("frame(s) 9 were not used" in w for w in late.warnings)
    with pytest.raises(InputError, match="takes no colour hints"):
        colorize_video(
            src,
            tmp_path / "y.mkv",
            load_model(str(tiny_model_path)),
            RunSettings(render=render, temporal=temporal, encode=encode),
            anchors=AnchorFiles(hints={2: tmp_path / "hints" / "000002.png"}),
        )
    assert not (tmp_path / "x.mkv").exists() and not (tmp_path / "y.mkv").exists()


def test_spread_fills_the_hinted_region_and_stops_at_an_edge():
    from vidcolor.hints import spread_hints
    from vidcolor.settings import HintSpread

    h, w = 64, 64
    luma = torch.full((1, 1, h, w), 0.3)
    luma[..., :, 32:] = 0.8  # a bright right half: a strong edge at column 32
    chroma = torch.zeros(1, 2, h, w)
    planes = hint_planes(
        [hints_from_points([HintPoint(27, 30, (40, 140, 40))], h, w)], (h, w)
    )  # green, left half, near the edge
    out = spread_hints(luma, chroma, planes, config=HintSpread(reach=0.25, edge=8.0))
    target = out[0, :, 30, 27]
    assert float(target.abs().max()) > 0.05  # the hint's own colour at its pixel
    left, right = out[0, :, 24:36, 18:24].abs().mean(), out[0, :, 24:36, 33:39].abs().mean()  # 4-9 px either side
    assert left > 0.3 * float(target.abs().mean()) and right < 0.02 * left, (float(left), float(right))
    assert torch.equal(spread_hints(luma, chroma, torch.zeros(1, 3, h, w)), chroma)  # no hint: untouched
    with pytest.raises(ValueError):
        HintSpread(reach=0)


def test_run_hints_folder_errors_are_one_line(make_clip, tiny_model_path, tiny_hint_model_path, tmp_path):
    src = make_clip(tmp_path / "film.mp4", frames=3, width=64, height=48, audio=False)
    (tmp_path / "hints").mkdir()
    hints_picture(tmp_path / "hints" / "000001.png", h=48, w=64, box=(5, 5, 15, 15))
    base = ["run", str(src), str(tmp_path / "out.mp4"), "--render-factor", "4", "--device", "cpu", "--quiet"]
    refused = runner.invoke(app, [*base, "--model", str(tiny_model_path), "--hints", str(tmp_path / "hints")])
    assert (
        refused.exit_code == 2
        and "takes no colour hints" in refused.output
        and len(refused.output.strip().splitlines()) == 1
    )
    missing = runner.invoke(app, [*base, "--model", str(tiny_hint_model_path), "--hints", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such hints file or folder" in missing.output
    hints_picture(tmp_path / "hints" / "000002.png", h=40, w=64)
    wrong = runner.invoke(app, [*base, "--model", str(tiny_hint_model_path), "--hints", str(tmp_path / "hints")])
    assert wrong.exit_code == 2 and "000002.png: hints picture is 64x40, the picture it guides is 64x48" in wrong.output
    (tmp_path / "hints" / "000002.png").unlink()
    ok = runner.invoke(app, [*base, "--model", str(tiny_hint_model_path), "--hints", str(tmp_path / "hints")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out*"))


def shapes_picture(path: Path) -> dict[str, np.ndarray]:
    """A grey picture of separate shapes on a mid-grey ground (generated here): two dark discs of
    nearly the same brightness, a bright square and a dark bar. -> each shape's mask."""
    h, w = 192, 256
    yy, xx = np.mgrid[0:h, 0:w]
    masks = {
        "disc": (yy - 60) ** 2 + (xx - 60) ** 2 < 35**2,
        "twin disc": (yy - 130) ** 2 + (xx - 150) ** 2 < 30**2,  # same darkness, 40 px away
        "square": (abs(yy - 50) < 28) & (abs(xx - 200) < 28),
        "bar": (abs(yy - 165) < 10) & (abs(xx - 50) < 40),
    }
    grey = np.full((h, w), 128, np.uint8)
    for name, level in (("disc", 60), ("twin disc", 66), ("square", 205), ("bar", 40)):
        grey[masks[name]] = level
    Image.fromarray(grey).save(path)
    return masks


def test_one_hint_colours_its_shape_and_nothing_else(tmp_path):
    """The shipped default model: a blue point on one disc changes the chroma (by more than 4 code
    values) only on that disc, however close a shape of the same brightness is."""
    import cv2

    masks = shapes_picture(tmp_path / "shapes.png")
    runs = {"auto": [], "hinted": ["--hint", "60,60,#2050e0"]}
    for name, extra in runs.items():
        result = runner.invoke(
            app, ["image", str(tmp_path / "shapes.png"), "-o", str(tmp_path / name), "--quiet", *extra]
        )
        assert result.exit_code == 0, result.output
    diff = np.abs(chroma_of(tmp_path / "hinted/shapes.png") - chroma_of(tmp_path / "auto/shapes.png")).max(-1)
    changed = diff > 4
    # The render grid is coarser than the picture: allow its interpolation a few pixels past the rim.
    allowed = cv2.dilate(masks["disc"].astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert changed[masks["disc"]].mean() > 0.9, changed[masks["disc"]].mean()  # the disc takes the colour
    assert not changed[~allowed].any(), {k: float(changed[m].mean()) for k, m in masks.items()} | {
        "ground": float(changed[~np.logical_or.reduce(list(masks.values()))].mean())
    }
