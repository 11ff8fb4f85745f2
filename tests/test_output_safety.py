"""Issue 16: a run never deletes its input, two runs on one OUT cannot corrupt each other,
SIGTERM/SIGHUP leave no temporary, a killed run's temporary is cleared next time, a cut file
loses no frame that decodes, and the smaller items (each test names its item)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from vidcolor.errors import OutputError
from vidcolor.media.outfile import OutputLock, create_partial, remove_stale_partials
from vidcolor.media.writer import partial_paths
from vidcolor.settings import (
    RenderConfig,
    RunSettings,  # noqa: I001
    TemporalConfig,
)
from vidcolor.video.run import colorize_video

FAST = RenderConfig(render_factor=4)
PER_FRAME = TemporalConfig(enabled=False)


def frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_an_input_named_like_the_temporary_is_kept(make_clip, tiny_model, tmp_path):
    # Before: the temporary was always .film.partial.mp4, so this input was overwritten and deleted.
    src = make_clip(tmp_path / ".film.partial.mp4", frames=12, audio=False)
    data = src.read_bytes()
    colorize_video(src, tmp_path / "film.mp4", tiny_model, RunSettings(render=FAST, temporal=PER_FRAME))
    assert src.read_bytes() == data
    assert frames(tmp_path / "film.mp4") == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [".film.partial.mp4", "film.mp4"]


def test_a_second_run_on_the_same_out_is_refused(make_clip, tiny_model, tmp_path):
    # Before: both runs wrote the same fixed temporary and the last rename won.
    src = make_clip(tmp_path / "in.mp4", frames=6, audio=False)
    out = tmp_path / "o.mp4"
    with OutputLock(out):  # another run holds OUT
        with pytest.raises(OutputError, match="being written by another vidcolor run"):
            colorize_video(src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME))
    assert not out.exists() and not partial_paths(out)
    colorize_video(
        src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME)
    )  # free again once the other run ends
    assert frames(out) == 6 and not (tmp_path / ".o.mp4.lock").exists()


def test_temporaries_are_unique_and_never_an_input(tmp_path):
    out = tmp_path / "o.mp4"
    a, b = create_partial(out, []), create_partial(out, [])
    assert a != b and a.exists() and b.exists() and a.parent == tmp_path
    keep = tmp_path / ".o.1234abcd.partial.mp4"
    keep.write_bytes(b"an input that looks like a temporary")
    removed = remove_stale_partials(out, [keep])
    assert sorted(removed) == sorted([a, b]) and keep.exists()


def test_a_killed_runs_temporary_is_removed_by_the_next_run(make_clip, tiny_model, tmp_path):
    # Before: a SIGKILLed run's .o.partial.mp4 stayed for ever.
    src = make_clip(tmp_path / "in.mp4", frames=6, audio=False)
    out = tmp_path / "o.mp4"
    stale = tmp_path / ".o.deadbeef.partial.mp4"
    stale.write_bytes(b"half a film")
    (tmp_path / ".o.mp4.lock").write_bytes(b"")  # the dead run's (unlocked) lock file
    colorize_video(src, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "o.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_nothing(make_clip, tiny_model_path, tmp_path, sig):
    # Before: only SIGINT was cleaned up; SIGTERM/SIGHUP left .o.partial.mp4 behind.
    src = make_clip(tmp_path / "long.mp4", frames=300, audio=False)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "o.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidcolor",
            "run",
            str(src),
            str(out),
            "--model",
            str(tiny_model_path),
            "--render-factor",
            "4",
            "--preset",
            "ultrafast",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not partial_paths(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.count("\n") == 1 and "no partial output" in err
    assert list(outdir.iterdir()) == []
    shutil.rmtree(outdir)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcolor", "run", *args], capture_output=True, text=True, timeout=120)


def test_report_paths_are_checked_before_any_work(make_clip, tiny_model_path, tmp_path):
    # Before: --report film.json overwrote the input film.json, and a missing folder gave a
    # traceback only after OUT had been written.
    src = make_clip(tmp_path / "film.mp4", frames=4, audio=False).rename(tmp_path / "film.json")  # a film called .json
    data = src.read_bytes()
    out = tmp_path / "o.mp4"
    same = run_cli(str(src), str(out), "--model", str(tiny_model_path), "--report", str(src))
    assert same.returncode == 2 and "input or output" in same.stderr and "Traceback" not in same.stderr
    missing = run_cli(str(src), str(out), "--model", str(tiny_model_path), "--report", str(tmp_path / "no" / "r.json"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert src.read_bytes() == data and not out.exists()
    ok = run_cli(
        str(src),
        str(out),
        "--model",
        str(tiny_model_path),
        "--render-factor",
        "4",
        "--report",
        str(tmp_path / "r.json"),
        "--quiet",
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "r.json").read_text().startswith("{")


@pytest.mark.parametrize("name", ["chelsea.png", "chelsea.mp4"])
def test_a_picture_given_to_run_is_refused_in_one_line(tmp_path, name):
    # Before: exit 139 (a segfault in PyAV after reading the PNG frame's side data), no message.
    from pathlib import Path

    src = tmp_path / name
    shutil.copy(Path(__file__).resolve().parent.parent / "samples" / "photos" / "chelsea.png", src)
    done = run_cli(str(src), str(tmp_path / "o.mp4"))
    assert done.returncode == 2 and "still picture" in done.stderr and "vidcolor image" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.mp4").exists()


def test_a_text_file_is_not_a_film(tmp_path):
    # Before: FFmpeg's tty demuxer rendered it, and run wrote 12 frames of text.
    src = tmp_path / "readme.txt"
    src.write_text("\n".join(f"line {i} of a plain text file" for i in range(200)))
    done = run_cli(str(src), str(tmp_path / "o.mp4"))
    assert done.returncode == 2 and "text file" in done.stderr and not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    "config",
    [
        '{"decoder_channels": [96, 64',
        '["a", "list"]',
        '{"decoder_channels": [4000000, 64, 48]}',
        '{"decoder_channels": "abc"}',
        '{"temperature": "hot"}',
        '{"evil": 1}',
        '{"bin_bias": [1e400]}',
        "x" * 70_000,
    ],
)
def test_crafted_weight_metadata_is_a_one_line_model_error(tmp_path, config):
    # Before: JSONDecodeError / TypeError tracebacks, or a 160 GB allocation for huge channels.
    import torch
    from safetensors.torch import save_file

    from vidcolor.errors import ModelError
    from vidcolor.models.weights import load_generator

    path = tmp_path / "crafted.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"format": "vidcolor-generator", "config": config})
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="metadata"):
        load_generator(path)
    assert time.monotonic() - t0 < 5


def test_image_globs_with_dotdot_cannot_write_outside_the_output_folder(tmp_path, monkeypatch):
    # Before: 'vidcolor image "*/../../x/*.png" -o out' wrote ../x/p.png beside the working folder.
    from pathlib import Path

    work, other = tmp_path / "work", tmp_path / "x"
    (work / "a").mkdir(parents=True)
    other.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "samples" / "photos" / "chelsea.png", other / "p.png")
    monkeypatch.chdir(work)
    done = subprocess.run(
        [sys.executable, "-m", "vidcolor", "image", "*/../../x/*.png", "-o", "out"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "leave the output folder" in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "p.png", "work", "x"]


def test_batch_keeps_the_warnings_of_a_done_item(make_clip, tiny_model_path, tmp_path):
    # Before: an mkv whose subtitles had to be dropped (and a reel cut short) were plain "done".
    import json

    from vidcolor.jobs.runner import JobOptions, run_job
    from vidcolor.jobs.settings import JobSettings
    from vidcolor.jobs.store import JobStore

    src = tmp_path / "archive"
    src.mkdir()
    make_clip(src / "subs.mkv", frames=6, width=64, height=48, subtitles=True)
    make_clip(src / "clean.mp4", frames=6, width=64, height=48, audio=False)
    dst = tmp_path / "colour"
    settings = JobSettings().override(
        {
            "run": {"model": str(tiny_model_path)},
            "render": {"render_factor": 4, "batch_size": 4},
            "temporal": {"enabled": False},
        }
    )
    report = run_job([src], dst, settings, JobOptions(workers=0, retries=0))
    by_key = {i.key: i for i in report.items}
    assert by_key["subs.mp4"].outcome == "done" and any("subtitle" in w for w in by_key["subs.mp4"].warnings)
    assert by_key["clean.mp4"].warnings == [] and report.totals()["with_warnings"] == 1
    on_disk = {i["key"]: i for i in json.loads((dst / ".vidcolor" / "report.json").read_text())["items"]}
    assert any("subtitle" in w for w in on_disk["subs.mp4"]["warnings"])
    with JobStore.open(dst, create=False) as store:
        assert any("subtitle" in w for w in store.get("subs.mp4").warning_list)


def test_a_schema_1_job_store_is_upgraded_in_place(tmp_path):
    import sqlite3

    from vidcolor.jobs.store import SCHEMA_VERSION, JobStore, store_path

    dst = tmp_path / "colour"
    JobStore.open(dst).close()
    conn = sqlite3.connect(store_path(dst))
    conn.execute("ALTER TABLE items DROP COLUMN warnings")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema'")
    conn.commit()
    conn.close()
    with JobStore.open(dst, create=False) as store:
        assert store.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == SCHEMA_VERSION
        assert "warnings" in [r[1] for r in store.conn.execute("PRAGMA table_info(items)")]


def test_an_emptied_job_store_is_reported_not_restarted(tmp_path):
    # Before: a jobs.sqlite truncated to 0 bytes was taken for a new job and every item was redone.
    from vidcolor.errors import InputError
    from vidcolor.jobs.store import JobStore, store_path

    dst = tmp_path / "colour"
    JobStore.open(dst).close()
    store_path(dst).write_bytes(b"")
    with pytest.raises(InputError, match="job store is empty"):
        JobStore.open(dst)
    with pytest.raises(InputError, match="job store is empty"):
        JobStore.open(dst, create=False)


def test_batch_lists_dangling_links_as_skipped(tmp_path, make_clip):
    # Before: a dangling symlink was neither processed nor listed.
    from vidcolor.jobs.scan import scan_sources

    src = tmp_path / "archive"
    src.mkdir()
    make_clip(src / "reel.mp4", frames=3, width=64, height=48, audio=False)
    (src / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    result = scan_sources([src], tmp_path / "colour")
    assert [i.key for i in result.items] == ["reel.mp4"]
    assert [(s.src.name, s.reason) for s in result.skipped] == [("gone.mp4", "dangling symbolic link")]


@pytest.mark.parametrize("size", [(960, 32), (4000, 16)])
def test_very_wide_frames_go_through_the_temporal_stage(make_clip, tiny_model, tmp_path, size):
    # Before: cv2.error from DIS in flow.py ("width or height >= 12") as a traceback.
    w, h = size
    src = make_clip(tmp_path / "wide.mp4", frames=4, width=w, height=h, audio=False)
    out = tmp_path / "wide_colour.mp4"
    colorize_video(src, out, tiny_model, RunSettings(render=FAST, temporal=TemporalConfig(enabled=True)))
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (w, h)
    assert frames(out) == 4


def decodable_frames(path) -> int:
    """What a single-threaded decoder gets out of a damaged file: the most a reader can give."""
    n = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type, stream.thread_count = "NONE", 1
        try:
            for packet in c.demux(stream):
                try:
                    n += len(packet.decode())
                except av.error.FFmpegError:
                    pass
        except av.error.FFmpegError:
            pass
    return n


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_a_cut_file_loses_no_frame_in_flight(tmp_path, cut):
    # Item 7, on the real sample film (its index comes first, so a cut copy still opens). Before:
    # the frame-threaded decoder failing on the cut-off last packet also dropped the frames its
    # other threads still held (4/51/110 where 6/53/112 decode).
    from vidcolor.media.probe import probe
    from vidcolor.media.reader import VideoReader

    data = (Path(__file__).resolve().parent.parent / "samples" / "clip.mp4").read_bytes()
    cut_file = tmp_path / "cut.mp4"
    cut_file.write_bytes(data[: int(len(data) * cut)])
    expected = decodable_frames(cut_file)
    assert 0 < expected < 132
    with VideoReader(cut_file, probe(cut_file).video, batch_size=4) as reader:
        got = sum(len(b) for b in reader)
    assert got == expected, (got, expected)
    assert any("cut off" in w for w in reader.warnings)


def test_a_file_cut_inside_its_second_packet_gives_its_first_frame(tiny_model, tmp_path):
    # Item 7. Before: exit 1 with an internal message about the temporary file; then, once
    # temporaries were fixed, "no video frame could be decoded" although the first frame decodes.
    whole = Path(__file__).resolve().parent.parent / "samples" / "clip.mp4"
    with av.open(str(whole)) as c:
        second = [p for p in c.demux(video=0) if p.size][1]
    cut_file = tmp_path / "cut.mp4"
    cut_file.write_bytes(whole.read_bytes()[: second.pos + second.size // 2])
    assert decodable_frames(cut_file) == 1
    out = tmp_path / "out.mp4"
    report = colorize_video(cut_file, out, tiny_model, RunSettings(render=FAST, temporal=PER_FRAME))
    assert report.frames == frames(out) == 1
    assert any("cut off" in w for w in report.warnings)
