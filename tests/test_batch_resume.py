"""kill -9 and resume: the real CLI with a worker process, killed after its first finished item.

Whatever moment the SIGKILL lands, the job must leave no partial file in DST, its worker must
not outlive it, and the resumed job must finish every item exactly once (counted by the store's
``completions``), report the broken file, and leave the staging area empty.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import EXPECTED_ITEMS, leftovers, make_archive
from PIL import Image

from vidcolor.jobs.store import store_path


def done_count(dst: Path) -> int:
    path = store_path(dst)
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM items WHERE state='done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # the table is not created yet
        return 0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigkill_then_resume_does_everything_exactly_once(tmp_path: Path, tiny_model_path: Path) -> None:
    src = make_archive(tmp_path)
    dst = tmp_path / "colour"
    cmd = [
        sys.executable, "-m", "vidcolor", "batch", str(src), str(dst), "--model", str(tiny_model_path),
        "-r", "4", "--no-temporal", "--workers", "1", "--retries", "1", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: done_count(dst) >= 1 or job.poll() is not None, 240, "the first finished item")
        assert job.poll() is None, "the job ended before it could be killed"
        os.kill(job.pid, signal.SIGKILL)  # the coordinator only: its worker must die with it
        job.wait()
        wait_for(lambda: not group_alive(job.pid), 30, "the worker to die with the coordinator")
    finally:
        if group_alive(job.pid):
            os.killpg(job.pid, signal.SIGKILL)

    # after the kill: every file in DST is a complete output of a known item, no temp file
    con = sqlite3.connect(store_path(dst))
    states = dict(con.execute("SELECT key, state FROM items"))
    con.close()
    assert "done" in states.values()
    outputs = sorted(
        p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file() and ".vidcolor" not in p.parts
    )
    assert set(outputs) <= set(EXPECTED_ITEMS)
    assert not [p for p in dst.rglob("*") if ".partial" in p.name and "staging" not in p.parts]
    for key in outputs:  # each present output opens: no half-written file at a final path
        if key.endswith(".mp4"):
            from vidcolor.media.probe import probe

            assert probe(dst / key).video.estimated_frames == 6
        else:
            with Image.open(dst / key) as im:
                im.load()
    done_before = {k for k, s in states.items() if s == "done"}

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr  # the broken file
    assert "broken.mp4" in resumed.stderr

    report = json.loads((dst / ".vidcolor" / "report.json").read_text())
    items = {i["key"]: i for i in report["items"]}
    assert set(items) == set(EXPECTED_ITEMS)
    assert items["broken.mp4"]["outcome"] == "failed" and items["broken.mp4"]["error"]
    assert items["broken.mp4"]["completions"] == 0
    for key, item in items.items():
        if key == "broken.mp4":
            continue
        assert item["state"] == "done"
        assert item["completions"] == 1, f"{key} was produced {item['completions']} times"
        if key in done_before:
            assert item["outcome"] == "up-to-date"
        assert (dst / key).is_file()
    assert leftovers(dst) == []
