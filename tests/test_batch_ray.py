"""The Ray engine runs the same job as the local engine: same items, outputs and report."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from helpers import EXPECTED_ITEMS, leftovers, make_archive

from vidcolor.jobs.runner import JobOptions, run_job
from vidcolor.jobs.settings import JobSettings

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[ray]); the ray engine cannot run")


def comparable(report) -> dict[str, tuple]:
    return {
        i.key: (i.kind, i.outcome, i.state, i.attempts, i.frames, bool(i.error), i.completions) for i in report.items
    }


@pytest.mark.slow
def test_ray_engine_matches_local_engine(tmp_path: Path, tiny_model_path: Path) -> None:
    src = make_archive(tmp_path)
    settings = JobSettings().override(
        {
            "run": {"model": str(tiny_model_path)},
            "render": {"render_factor": 4, "batch_size": 4},
            "temporal": {"enabled": False},
        }
    )
    local = run_job([src], tmp_path / "local", settings, JobOptions(engine="local", workers=0, retries=1))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_job([src], tmp_path / "ray", settings, JobOptions(engine="ray", retries=1))
        assert ray.is_initialized()  # a Ray the caller started is left running for the caller
        again = run_job([src], tmp_path / "ray", settings, JobOptions(engine="ray", retries=1))
    finally:
        session = ray._private.worker._global_node.get_session_dir_path() if ray.is_initialized() else None
        ray.shutdown()
        if session:  # Ray leaves its session folder (logs, sockets) in /tmp/ray: tests leave nothing
            shutil.rmtree(session, ignore_errors=True)
            root = Path(session).parent
            latest = root / "session_latest"
            if latest.is_symlink() and os.readlink(latest) == session:
                latest.unlink()
            with contextlib.suppress(OSError):
                root.rmdir()  # only when no other Ray session is kept there

    assert set(comparable(remote)) == set(EXPECTED_ITEMS)
    assert comparable(remote) == comparable(local)
    assert [s["src"] for s in remote.skipped] == [s["src"] for s in local.skipped]
    for key in EXPECTED_ITEMS:
        assert (tmp_path / "ray" / key).is_file() == (tmp_path / "local" / key).is_file()
    assert {i.outcome for i in again.items if i.key != "broken.mp4"} == {"up-to-date"}
    assert leftovers(tmp_path / "ray") == []
