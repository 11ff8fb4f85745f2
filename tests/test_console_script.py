"""The installed ``vidcolor`` console script, run in a subprocess the way a user runs it.

This catches what in-process CLI tests cannot: an entry point that does not start (a dependency
imported but not declared in pyproject.toml, a command module that fails to import).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "samples" / "clip.mp4"
COMMANDS = ("run", "keyframes", "image", "batch", "train", "eval", "eval-video", "models", "export")


def console_script() -> str:
    """The ``vidcolor`` script of the Python running the tests (its venv's bin/), else PATH's."""
    beside = Path(sys.executable).parent / "vidcolor"
    found = str(beside) if beside.exists() else shutil.which("vidcolor")
    assert found, "the vidcolor console script is not installed (pip install -e .)"
    return found


def vidcolor(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([console_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def first_frames(src: Path, dst: Path, frames: int) -> int:
    """The first ``frames`` frames of ``src`` re-encoded, with the audio packets of that span."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = {"preset": "ultrafast"}
        aout = out.add_stream_from_template(ain)
        end = None
        for n, frame in enumerate(inp.decode(vin)):
            if n == frames:
                end = frame.time
                break
            frame.pts, frame.time_base = n, Fraction(1) / vin.average_rate
            for packet in vout.encode(frame):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)
        inp.seek(0)
        for packet in inp.demux(ain):
            if packet.dts is None or (end is not None and packet.pts * packet.time_base >= end):
                continue
            packet.stream = aout
            out.mux(packet)
    return frames


def test_help_of_the_command_and_every_subcommand():
    top = vidcolor("--help")
    assert top.returncode == 0, top.stderr
    for name in COMMANDS:
        assert name in top.stdout
        sub = vidcolor(name, "--help")
        assert sub.returncode == 0 and "Usage" in sub.stdout, (name, sub.stderr)
        assert "Traceback" not in sub.stderr


@pytest.mark.slow
def test_run_on_the_sample_film(tmp_path):
    short = tmp_path / "short.mp4"
    n = first_frames(CLIP, short, 12)
    out = tmp_path / "short_colour.mp4"
    done = vidcolor("run", str(short), str(out), "--render-factor", "8", "--quiet")
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == n
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    done = vidcolor("run", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_version_and_a_light_start():
    """`vidcolor --version` answers, and the command line starts without importing torch (what
    made `vidcolor --help` take seconds; the time itself is in benchmarks/RESULTS.md)."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from vidcolor.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("vidcolor ")
    code = "import sys, vidcolor.cli; print(sorted(m for m in ('torch', 'cv2', 'av') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded
