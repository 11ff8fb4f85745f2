"""pipelines/save_resume_point.py: a long run's resume point, metrics and log saved for committing."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidcolor.errors import VidcolorError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "pipelines" / "save_resume_point.py"
_spec = importlib.util.spec_from_file_location("save_resume_point", SCRIPT)
save_resume_point = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(save_resume_point)
HEADER = "step,loss,lr,images_per_s,holdout_psnr\n"


def save_point(path: Path, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.full((2,), float(step))}, str(path), metadata={"step": str(step)})


def run(cwd: Path, *args: str) -> int:
    """The script's main in this process (importing torch once per process costs seconds here)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return save_resume_point.main(["run.toml", *args])


def rows(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="") as fh:
        return {int(r["step"]): r for r in csv.DictReader(fh)}


def setup_run(tmp_path: Path) -> Path:
    """A run at step 400 whose committed files stop at step 300 (the session before)."""
    (tmp_path / "run.toml").write_text('[train]\nout_dir = "out"\nresume_weights = "ck/x-resume.safetensors"\n')
    save_point(tmp_path / "ck" / "x-resume.safetensors", 300)
    (tmp_path / "ck" / "x-metrics.csv").write_text(HEADER + "100,5,1e-4,9,\n200,4,1e-4,9,22.5\n300,3,1e-4,9,\n")
    (tmp_path / "ck" / "x-train.log").write_text("step 100 loss 5\nstep 200 loss 4\nstep 300 loss 3\n")
    save_point(tmp_path / "out" / "resume.safetensors", 400)
    # The session resumed at 300 (its step 350 was trained before the last stop too, and again now)
    # and trained past its last checkpoint at 400: step 450 will be trained again next session.
    (tmp_path / "out" / "metrics.csv").write_text(HEADER + "350,2.5,1e-4,8,\n400,2,1e-4,8,23\n450,1.9,1e-4,8,\n")
    (tmp_path / "train.log").write_text("step 300 loss 3\nresuming at step 300\nstep 350 loss 2.5\nstep 400 loss 2\n")
    return tmp_path


def test_saves_weights_metrics_and_log_and_is_idempotent(tmp_path: Path) -> None:
    cwd = setup_run(tmp_path)
    for _ in range(2):  # a second save changes nothing
        assert run(cwd, "--log", "train.log") == 0
        assert (cwd / "ck" / "x-resume.safetensors").read_bytes() == (cwd / "out" / "resume.safetensors").read_bytes()
        merged = rows(cwd / "ck" / "x-metrics.csv")
        assert sorted(merged) == [100, 200, 300, 350, 400]  # 450 is past the resume point
        assert merged[400]["holdout_psnr"] == "23" and merged[200]["holdout_psnr"] == "22.5"
        assert (cwd / "ck" / "x-train.log").read_text().splitlines() == [
            "step 100 loss 5",
            "step 200 loss 4",
            "step 300 loss 3",
            "resuming at step 300",
            "step 350 loss 2.5",
            "step 400 loss 2",
        ]
    assert not [p for p in (cwd / "ck").iterdir() if p.name.startswith(".")]  # no temp files left


def test_later_run_rows_replace_earlier_ones_for_the_same_step(tmp_path: Path) -> None:
    cwd = setup_run(tmp_path)
    (cwd / "out" / "metrics.csv").write_text(HEADER + "300,2.9,1e-4,7,\n400,2,1e-4,8,23\n")
    assert run(cwd) == 0
    assert rows(cwd / "ck" / "x-metrics.csv")[300]["loss"] == "2.9"


def test_an_older_resume_point_is_refused_unless_forced(tmp_path: Path) -> None:
    cwd = setup_run(tmp_path)
    save_point(cwd / "out" / "resume.safetensors", 200)
    before = (cwd / "ck" / "x-resume.safetensors").read_bytes()
    with pytest.raises(VidcolorError, match=r"at step 200, older than ck/x-resume.safetensors \(step 300\)"):
        run(cwd)
    assert (cwd / "ck" / "x-resume.safetensors").read_bytes() == before
    assert run(cwd, "--force") == 0
    assert sorted(rows(cwd / "ck" / "x-metrics.csv")) == [100, 200]


def test_a_run_without_a_resume_point_is_a_one_line_error(tmp_path: Path) -> None:
    cwd = setup_run(tmp_path)
    (cwd / "out" / "resume.safetensors").unlink()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "run.toml"], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: out/resume.safetensors: no resume point yet (the run writes one at its first checkpoint)"
    )
