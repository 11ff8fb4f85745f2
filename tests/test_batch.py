"""Batch archive conversion: detection, output layout, job store, resume rules, report, CLI.

These runs use the in-process executor (``workers=0``) to stay fast; the worker-process engine
is exercised by test_batch_resume.py (kill -9 and resume) and Ray by test_batch_ray.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import CLIP, EXPECTED_ITEMS, leftovers, make_archive, make_clip
from PIL import Image
from typer.testing import CliRunner

from vidcolor.errors import InputError
from vidcolor.jobs.runner import JobOptions, run_job
from vidcolor.jobs.scan import scan_sources
from vidcolor.jobs.settings import JobSettings, load_recipe, settings_hash
from vidcolor.jobs.store import JobStore, job_lock, store_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    return make_archive(tmp_path)


@pytest.fixture()
def settings(tiny_model_path: Path) -> JobSettings:
    return JobSettings().override(
        {
            "run": {"model": str(tiny_model_path)},
            "render": {"render_factor": 4, "batch_size": 4},
            "temporal": {"enabled": False},
        }
    )


INLINE = JobOptions(workers=0, retries=1)


def outcomes(report) -> dict[str, str]:
    return {i.key: i.outcome for i in report.items}


def completions(dst: Path) -> dict[str, int]:
    with JobStore.open(dst, create=False) as store:
        return {r.key: r.completions for r in store.rows()}


# -- detection and layout ------------------------------------------------------------------------
def test_scan_finds_media_by_content_and_mirrors_the_tree(archive: Path, tmp_path: Path) -> None:
    scan = scan_sources([archive], tmp_path / "out", "mp4")
    assert {i.key: i.kind for i in scan.items} == EXPECTED_ITEMS
    assert [(s.src.name, s.reason) for s in scan.skipped] == [("notes.txt", "not an image or a video")]
    by_key = {i.key: i for i in scan.items}
    assert by_key["reel.mp4"].expected_frames == 6
    assert by_key["broken.mp4"].note  # the probe's complaint is kept for the report
    assert by_key["mystery.mp4"].src.name == "mystery.bin"


class CountingCache:
    def __init__(self) -> None:
        self.entries: dict[tuple, object] = {}
        self.hits = 0

    def lookup(self, path: str, size: int, mtime_ns: int):
        found = self.entries.get((path, size, mtime_ns))
        self.hits += found is not None
        return found

    def remember(self, path: str, size: int, mtime_ns: int, detected) -> None:
        self.entries[(path, size, mtime_ns)] = detected


def test_scan_remembers_detections_until_a_file_changes(archive: Path, tmp_path: Path) -> None:
    cache = CountingCache()
    first = scan_sources([archive], tmp_path / "out", "mp4", cache)
    assert cache.hits == 0 and len(cache.entries) == 7
    again = scan_sources([archive], tmp_path / "out", "mkv", cache)  # container applies to cached films too
    assert cache.hits == 7
    assert sorted(i.key for i in again.items) == sorted(k.replace(".mp4", ".mkv") for k in (i.key for i in first.items))
    (archive / "notes.txt").write_bytes((archive / "photos" / "grey.png").read_bytes())  # now a PNG
    third = scan_sources([archive], tmp_path / "out", "mp4", cache)
    assert "notes.txt.png" in {i.key for i in third.items} and not third.skipped


def test_scan_several_sources_collisions_and_dst_inside_src(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    make_clip(a / "film.mp4", audio=False, **CLIP)
    shutil.copyfile(a / "film.mp4", a / "film.avi")  # both would become film.mp4
    fake = a / "fake.mkv"
    fake.write_text("not a film at all")  # named like a film: tried and reported, not skipped
    b = tmp_path / "b.mov"
    shutil.copyfile(a / "film.mp4", b)
    scan = scan_sources([a, b], a / "out", "mp4")  # several sources: each under DST/<its name>
    assert sorted(i.key for i in scan.items) == ["a/fake.mp4", "a/film.avi.mp4", "a/film.mp4", "b.mp4"]
    assert sorted(i.key for i in scan_sources([a], a / "out", "mkv").items) == [
        "fake.mkv",
        "film.avi.mkv",
        "film.mp4.mkv",
    ]
    # DST inside SRC is never scanned as input
    (a / "out").mkdir()
    make_clip(a / "out" / "old.mp4", audio=False, **CLIP)
    assert not any("old" in i.key for i in scan_sources([a], a / "out", "mp4").items)
    with pytest.raises(InputError, match="must not be the source"):
        scan_sources([a], a, "mp4")
    with pytest.raises(InputError, match="no such file"):
        scan_sources([tmp_path / "missing"], tmp_path / "o", "mp4")


# -- recipe and settings -------------------------------------------------------------------------
def test_recipe_file_matches_builtin_defaults_and_validates(tmp_path: Path) -> None:
    assert load_recipe(REPO / "pipelines" / "batch-default.toml") == JobSettings()
    bad = tmp_path / "bad.toml"
    bad.write_text("[encode]\ncrf = 'high'\n")
    with pytest.raises(InputError, match="crf"):
        load_recipe(bad)
    bad.write_text("[encode]\nbitrate = 5\n")
    with pytest.raises(InputError, match="unknown setting"):
        load_recipe(bad)
    bad.write_text("[batch]\ncontainer = 'avi'\n")
    with pytest.raises(InputError, match="container"):
        load_recipe(bad)
    bad.write_text("[video]\ncrf = 20\n")
    with pytest.raises(InputError, match="unknown section"):
        load_recipe(bad)
    s = JobSettings().override({"encode": {"crf": 30}, "run": {"model": None}})
    assert s.run.encode.crf == 30 and s.run.model == "default"
    # film settings do not touch photos' hash; model settings touch both; speed settings neither
    base = JobSettings()
    crf30 = base.override({"encode": {"crf": 30}})
    assert settings_hash(base, "image", "m") == settings_hash(crf30, "image", "m")
    assert settings_hash(base, "video", "m") != settings_hash(crf30, "video", "m")
    faster = base.override({"render": {"batch_size": 2, "device": "cpu"}, "encode": {"threads": 1}})
    assert settings_hash(base, "video", "m") == settings_hash(faster, "video", "m")
    assert settings_hash(base, "video", "m") != settings_hash(
        base.override({"temporal": {"keyframe_interval": "auto"}}), "video", "m"
    )
    assert settings_hash(base, "image", "m") != settings_hash(base, "image", "other-weights")


# -- runs, resume rules, report ------------------------------------------------------------------
def test_run_resume_and_redo_rules(archive: Path, tmp_path: Path, settings: JobSettings) -> None:
    from vidcolor.media.probe import probe

    dst = tmp_path / "colour"
    report = run_job([archive], dst, settings, INLINE)
    assert outcomes(report) == {k: ("failed" if k == "broken.mp4" else "done") for k in EXPECTED_ITEMS}
    assert report.failed == 1
    broken = next(i for i in report.items if i.key == "broken.mp4")
    assert broken.attempts == 2 and "broken.mp4" in broken.error  # 1 + retries, error recorded
    assert probe(dst / "reel.mp4").video.estimated_frames == 6
    assert probe(dst / "sub/deep/reel2.mp4").video.width == 64
    with Image.open(dst / "photos/scan.jpg") as im:
        assert im.format == "JPEG" and im.size == (32, 48)
    with Image.open(dst / "photos/grey.png") as im:
        assert im.format == "PNG"
    assert not (dst / "broken.mp4").exists() and leftovers(dst) == []
    on_disk = json.loads((dst / ".vidcolor" / "report.json").read_text())
    assert {i["key"] for i in on_disk["items"]} == set(EXPECTED_ITEMS)
    assert on_disk["skipped"][0]["src"].endswith("notes.txt") and on_disk["totals"]["failed"] == 1
    assert (archive / "notes.txt").read_text() == "shot list, reel 1\n"  # inputs untouched

    # the same command again: nothing redone but the failure
    again = run_job([archive], dst, settings, INLINE)
    assert outcomes(again) == {k: ("failed" if k == "broken.mp4" else "up-to-date") for k in EXPECTED_ITEMS}

    # a changed input is redone; a touched but identical one is not
    Image.fromarray(np.full((40, 56), 90, np.uint8)).save(archive / "photos" / "grey.png")
    stat = (archive / "reel.mp4").stat()
    os.utime(archive / "reel.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = run_job([archive], dst, settings, INLINE)
    assert outcomes(changed)["photos/grey.png"] == "done"
    assert outcomes(changed)["reel.mp4"] == "up-to-date"

    # changed film settings redo the films only; the broken file is tried again each run
    redo = run_job([archive], dst, settings.override({"encode": {"crf": 30}}), INLINE)
    assert outcomes(redo) == {
        "broken.mp4": "failed", "mystery.mp4": "done", "photos/grey.png": "up-to-date",
        "photos/scan.jpg": "up-to-date", "reel.mp4": "done", "sub/deep/reel2.mp4": "done",
    }  # fmt: skip
    assert completions(dst) == {
        "broken.mp4": 0, "mystery.mp4": 2, "photos/grey.png": 2, "photos/scan.jpg": 1, "reel.mp4": 2,
        "sub/deep/reel2.mp4": 2,
    }  # fmt: skip
    assert leftovers(dst) == []


def test_killed_attempt_is_adopted_or_redone(archive: Path, tmp_path: Path, settings: JobSettings) -> None:
    """Resume after a kill: an output renamed into place before the kill is kept, not redone; an
    attempt killed earlier (output missing, debris in staging) is redone and its debris removed."""
    dst = tmp_path / "colour"
    run_job([archive], dst, settings, INLINE)
    con = sqlite3.connect(store_path(dst))
    # reel.mp4: killed after its rename (the output changed since the attempt began)
    con.execute("UPDATE items SET state='running', output_before='' WHERE key='reel.mp4'")
    # photos/scan.jpg: killed mid-way: no output yet, a temp file left in staging
    con.execute("UPDATE items SET state='running', output_before='' WHERE key='photos/scan.jpg'")
    con.commit()
    con.close()
    (dst / "photos/scan.jpg").unlink()
    debris = dst / ".vidcolor" / "staging" / "abc-1" / ".scan.jpg.1234.partial"
    debris.parent.mkdir(parents=True)
    debris.write_bytes(b"half a jpeg")
    beside = dst / "photos" / ".scan.jpg.0a1b2c3d.partial"  # a cross-filesystem copy killed mid-way
    beside.write_bytes(b"half a jpeg")
    report = run_job([archive], dst, settings, INLINE)
    assert outcomes(report)["reel.mp4"] == "adopted"
    assert outcomes(report)["photos/scan.jpg"] == "done"
    assert completions(dst)["reel.mp4"] == 2 and completions(dst)["photos/scan.jpg"] == 2
    assert leftovers(dst) == [] and (dst / "photos/scan.jpg").is_file()


def test_place_across_filesystems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from vidcolor.jobs import work

    staged = tmp_path / "staging" / "a.png"
    staged.parent.mkdir()
    staged.write_bytes(b"picture")
    real_replace = os.replace
    calls = []

    def replace(a, b):
        calls.append((Path(a), Path(b)))
        if len(calls) == 1:  # staging -> final crosses a mount point
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(a, b)

    monkeypatch.setattr(work.os, "replace", replace)
    work.place(staged, tmp_path / "out" / "a.png")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"picture"
    assert calls[1][0].name.startswith(".a.png.") and calls[1][0].parent == tmp_path / "out"
    assert work.stale_temps(tmp_path / "out" / "a.png") == []


def test_one_job_per_destination(archive: Path, tmp_path: Path, settings: JobSettings) -> None:
    dst = tmp_path / "colour"
    with job_lock(dst):
        with pytest.raises(InputError, match="another vidcolor batch"):
            run_job([archive], dst, settings, INLINE)


def test_ray_engine_without_ray_is_a_clean_error(
    archive: Path, tmp_path: Path, settings: JobSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match=r"pip install \"vidcolor\[ray\]\""):
        run_job([archive], tmp_path / "colour", settings, JobOptions(engine="ray"))
    assert not (tmp_path / "colour").exists()


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_batch_and_status(archive: Path, tmp_path: Path, tiny_model_path: Path) -> None:
    from vidcolor.cli import app

    runner = CliRunner()
    dst = tmp_path / "colour"
    result = runner.invoke(app, ["batch", "status", str(dst)])
    assert result.exit_code == 2 and "no batch job" in result.output

    args = [
        "batch",
        str(archive),
        str(dst),
        "--model",
        str(tiny_model_path),
        "-r",
        "4",
        "--no-temporal",
        "--workers",
        "0",
        "--retries",
        "0",
    ]
    result = runner.invoke(app, [*args, "--report", str(tmp_path / "copy.json")])
    assert result.exit_code == 1, result.output  # the broken file failed; everything else done
    assert json.loads((tmp_path / "copy.json").read_text())["totals"]["failed"] == 1
    assert "broken.mp4" in result.output and "failed" in result.output
    rows = json.loads((dst / ".vidcolor" / "report.json").read_text())["items"]
    assert sum(r["outcome"] == "done" for r in rows) == len(EXPECTED_ITEMS) - 1

    result = runner.invoke(app, ["batch", "status", str(dst)])
    assert result.exit_code == 1 and "5 done" in result.output and "broken.mp4" in result.output
    result = runner.invoke(app, ["batch", "status", str(dst), "--json"])
    assert json.loads(result.output)["counts"] == {"pending": 0, "running": 0, "done": 5, "failed": 1}

    result = runner.invoke(app, ["batch", str(dst)])
    assert result.exit_code == 2 and "at least one SRC" in result.output
    result = runner.invoke(app, ["batch", str(archive), str(tmp_path / "x"), "--model", "no-such-model"])
    assert result.exit_code == 2 and "unknown model" in result.output
    assert not (tmp_path / "x").exists()  # nothing created before the model was checked
    result = runner.invoke(
        app, ["batch", str(archive), str(tmp_path / "y"), "--engine", "spark", "--model", str(tiny_model_path)]
    )
    assert result.exit_code == 2 and "unknown engine" in result.output


def test_references_per_film_and_their_changes_redo_it(tmp_path: Path, settings: JobSettings) -> None:
    import av

    src = tmp_path / "films"
    src.mkdir()
    make_clip(src / "reel.mkv", audio=False, codec="ffv1", pix_fmt="yuv444p", **CLIP)
    make_clip(src / "other.mkv", audio=False, codec="ffv1", pix_fmt="yuv444p", **CLIP)
    refs = src / "refs" / "reel"  # inside SRC: must not be taken for photos to colour
    refs.mkdir(parents=True)
    with av.open(str(src / "reel.mkv")) as c:
        truth = next(c.decode(video=0)).to_ndarray(format="rgb24")
    Image.fromarray(truth).save(refs / "000000.png")
    dst = tmp_path / "out"
    with_refs = settings.override({"encode": {"codec": "ffv1"}}, references=(str(src / "refs"),), container="mkv")
    report = run_job([src], dst, with_refs, INLINE)
    assert outcomes(report) == {"reel.mkv": "done", "other.mkv": "done"}

    def first_frame(path: Path) -> np.ndarray:
        with av.open(str(path)) as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32)

    colour = lambda x: x - x.mean(2, keepdims=True)  # noqa: E731
    err_ref = np.abs(colour(first_frame(dst / "reel.mkv")) - colour(truth.astype(np.float32))).mean()
    with av.open(str(src / "other.mkv")) as c:
        other_truth = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32)
    err_plain = np.abs(colour(first_frame(dst / "other.mkv")) - colour(other_truth)).mean()
    assert err_ref < 0.3 * err_plain  # the film with a reference took its colour
    assert outcomes(run_job([src], dst, with_refs, INLINE)) == {"reel.mkv": "up-to-date", "other.mkv": "up-to-date"}
    Image.fromarray(255 - truth).save(refs / "000000.png")  # the reference changed (and no longer matches)
    again = run_job([src], dst, with_refs, INLINE)
    assert outcomes(again)["other.mkv"] == "up-to-date" and outcomes(again)["reel.mkv"] == "failed"
    assert "does not match frame 0" in next(i.error for i in again.items if i.key == "reel.mkv")
    with pytest.raises(InputError, match="no such folder"):
        run_job([src], dst, settings.override(references=(str(tmp_path / "none"),)), INLINE)


def test_batch_offers_every_run_setting_option_with_the_same_checks(tmp_path: Path) -> None:
    """One schema: every rendering, temporal, encoding, hint and reference option of `run` is an
    option of `batch` with the same names, and a bad value is refused alike by both."""
    import typer.main
    from typer.testing import CliRunner

    from vidcolor.cli import app
    from vidcolor.cli.options import SETTING_OPTIONS

    group = typer.main.get_command(app)
    run_opts = {tuple(p.opts) for p in group.commands["run"].params if p.param_type_name == "option"}
    batch_group = group.commands["batch"]
    batch_opts = {tuple(p.opts) for p in batch_group.commands["run"].params if p.param_type_name == "option"}
    shared = {tuple(p.opts) for p in group.commands["run"].params if p.name in {o.name for o in SETTING_OPTIONS}}
    assert len(shared) == len(SETTING_OPTIONS) and shared <= run_opts and shared <= batch_opts
    only_run = {o for opts in run_opts - batch_opts for o in opts}
    # What a batch does not need: it never overwrites, and a preview of a stretch is one film's.
    assert only_run <= {"--overwrite", "-y", "--frames"}, only_run
    runner = CliRunner()
    src = tmp_path / "in.mp4"
    make_clip(src, frames=2, width=32, height=32, audio=False)
    for bad, message in (
        (["--crf", "99"], "out of range"),
        (["--keyframe-interval", "soon"], "keyframe-interval"),
        (["--temporal-strength", "2"], "temporal-strength"),
        (["--render-factor", "2"], "render-factor"),
    ):
        one = runner.invoke(app, ["run", str(src), str(tmp_path / "out.mp4"), *bad])
        many = runner.invoke(app, ["batch", str(src), str(tmp_path / "dst"), *bad])
        assert one.exit_code == many.exit_code == 2 and message in one.output and message in many.output, (
            one.output,
            many.output,
        )


def test_refused_jobs_leave_no_destination_behind(tmp_path: Path, settings: JobSettings) -> None:
    """A missing source or sources without any film or picture: a one-line error, exit 2, and the
    DST the command would have made is not left behind."""
    from typer.testing import CliRunner

    from vidcolor.cli import app

    dst = tmp_path / "out"
    with pytest.raises(InputError, match="no such file or folder"):
        run_job([tmp_path / "missing"], dst, settings, INLINE)
    assert not dst.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not media")
    with pytest.raises(InputError, match="no film or picture found"):
        run_job([empty], dst, settings, INLINE)
    assert not dst.exists()
    for src in (tmp_path / "missing", empty):
        result = CliRunner().invoke(app, ["batch", str(src), str(dst), "--model", settings.run.model])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert not dst.exists()


def test_studio_choices_beside_a_film_are_its_anchors_not_pictures(tmp_path: Path, settings: JobSettings) -> None:
    """`vidcolor studio` saves film.studio/{hints,references}/ beside the film; `batch --reference SRC`
    reads them for that film, and never colours them as photos."""
    import av

    src = tmp_path / "films"
    src.mkdir()
    make_clip(src / "reel.mkv", audio=False, codec="ffv1", pix_fmt="yuv444p", **CLIP)
    refs = src / "reel.studio" / "references"
    refs.mkdir(parents=True)
    with av.open(str(src / "reel.mkv")) as c:
        truth = next(c.decode(video=0)).to_ndarray(format="rgb24")
    Image.fromarray(truth).save(refs / "000000.png")
    (src / "reel.studio" / "studio.json").write_text("{}")
    dst = tmp_path / "out"
    plain = run_job([src], dst, settings.override({"encode": {"codec": "ffv1"}}, container="mkv"), INLINE)
    assert outcomes(plain) == {"reel.mkv": "done"}  # the choices folder holds no picture to colour
    with_choices = settings.override({"encode": {"codec": "ffv1"}}, references=(str(src),), container="mkv")
    assert outcomes(run_job([src], dst, with_choices, INLINE)) == {"reel.mkv": "done"}  # anchors: redone
    with av.open(str(dst / "reel.mkv")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32)
    colour = lambda x: x - x.mean(2, keepdims=True)  # noqa: E731
    assert np.abs(colour(first) - colour(truth.astype(np.float32))).mean() < 3.0  # the reference's colour
