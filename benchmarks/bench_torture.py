"""The torture table: vidcolor run the way a careless user, a crashing machine and a hostile file
would run it (issue 16). Every case builds its own media with PyAV, numpy and PIL in a fresh folder,
runs the real CLI in a child process and checks what a person would check afterwards:

    exit code; the one-line message; a traceback anywhere?; stray files (temporaries, partials)?;
    input intact (same sha256)?; output valid (present and decodable when the run succeeded,
    absent when it was refused)?

A row is clean when the outcome is the expected one (success or a refusal) and every check holds.

    nice python benchmarks/bench_torture.py [--huge 12000] [--keep DIR]

Prints a Markdown table (paste into benchmarks/RESULTS.md) and exits 1 if any row is not clean.
``--huge`` sets the side of the huge-picture case (peak RSS of the child is reported).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

W, H, FPS = 160, 96, 25
CLI = [sys.executable, "-m", "vidcolor"]


# -- media builders ------------------------------------------------------------------------------
def grey_frames(n: int, width: int = W, height: int = H) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width]
    return [(((xx + 3 * i) // 16 + yy // 16) % 2 * 120 + 60).astype(np.uint8) for i in range(n)]


def make_clip(
    path: Path,
    frames: int = 12,
    width: int = W,
    height: int = H,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    field_order: int = 0,
    audio: bool = True,
) -> Path:
    out = av.open(str(path), "w")
    vs = out.add_stream(codec, rate=FPS)
    vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
    vs.codec_context.time_base = Fraction(1, FPS)
    if codec == "libx264":
        vs.options = {"preset": "ultrafast", "crf": "18"}
    if field_order:
        vs.codec_context.field_order = field_order
    sound = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
    for i, y in enumerate(grey_frames(frames, width, height)):
        f = av.VideoFrame.from_ndarray(np.repeat(y[..., None], 3, axis=2), "rgb24").reformat(format=pix_fmt)
        f.pts = i
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    if sound is not None:
        n = 1024
        for k in range(frames * 48000 // FPS // n):
            t = (np.arange(n) + k * n) / 48000
            a = av.AudioFrame.from_ndarray(
                np.tile(np.sin(2 * np.pi * 440 * t).astype(np.float32), (2, 1)), format="fltp", layout="stereo"
            )
            a.sample_rate, a.pts = 48000, k * n
            for p in sound.encode(a):
                out.mux(p)
        for p in sound.encode():
            out.mux(p)
    out.close()
    return path


def make_png(path: Path, width: int, height: int) -> Path:
    """A grey checkerboard picture of any size. Built in a child process: a child's peak RSS
    (ru_maxrss) starts from its parent's at fork, so this process must stay small."""
    code = (
        "import sys, numpy as np; from PIL import Image; w, h = int(sys.argv[2]), int(sys.argv[3]); "
        "y = ((np.arange(h)[:, None] // 64 + np.arange(w)[None, :] // 64) % 2 * 120 + 60).astype(np.uint8); "
        "Image.fromarray(y, 'L').save(sys.argv[1], compress_level=1)"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(width), str(height)], check=True)
    return path


def png_bomb(path: Path, side: int = 100_000) -> Path:
    """A valid PNG header that declares side×side pixels over a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        import zlib

        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    import zlib

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    )
    return path


class Evil:
    """Unpickling this runs a command: a crafted .pth must be refused before that happens."""

    def __reduce__(self):  # noqa: D105
        return (os.system, ("touch PWNED",))


# -- the cases -----------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # builds inputs in the folder; returns the CLI arguments
    ok: bool  # a success is expected (else a one-line refusal)
    outputs: tuple[str, ...] = ()  # files a success leaves (relative to the folder)
    interrupt: int | None = None  # a signal sent once the run is under way
    resume: bool = False  # after an interrupt, run again: it must succeed
    check: Callable[[Path], str] | None = None  # extra validation of the outputs: '' when good


@dataclass
class Row:
    case: str
    rc: int
    message: str
    traceback: bool
    strays: list[str]
    input_intact: bool
    output_valid: bool
    seconds: float
    peak_mb: float
    clean: bool = field(default=False)


def clip(name: str = "film.mp4", **kw) -> Callable[[Path], Path]:
    return lambda d: make_clip(d / name, **kw)


def args_run(src: Callable[[Path], Path], out: str, *extra: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        return ["run", src(d).name, out, *extra]

    return setup


def same_as_input(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    return ["run", "film.mp4", "film.mp4", "--overwrite"]


def temp_named_input(d: Path) -> list[str]:
    make_clip(d / ".film.partial.mp4")
    return ["run", ".film.partial.mp4", "film.mp4"]


def out_is_dir(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    (d / "out.mp4").mkdir()
    return ["run", "film.mp4", "out.mp4", "--overwrite"]


def out_missing_dir(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    return ["run", "film.mp4", "no/such/dir/out.mp4"]


def out_under_a_file(d: Path) -> list[str]:
    # (A read-only folder is no test when the benchmark runs as root, who may write anywhere.)
    make_clip(d / "film.mp4")
    (d / "notes.txt").write_text("a file, not a folder\n")
    return ["run", "film.mp4", "notes.txt/out.mp4"]


def truncated(d: Path) -> list[str]:
    data = make_clip(d / "full.mp4", frames=25).read_bytes()
    (d / "full.mp4").unlink()
    (d / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    return ["run", "cut.mp4", "out.mp4"]


def cut_mkv(d: Path) -> list[str]:
    # Matroska cut mid-cluster: the frames before the cut are kept, the run reports it.
    data = make_clip(d / "full.mkv", frames=25).read_bytes()
    (d / "full.mkv").unlink()
    (d / "cut.mkv").write_bytes(data[: len(data) * 3 // 4])
    return ["run", "cut.mkv", "out.mkv"]


def damaged_middle(d: Path) -> list[str]:
    data = bytearray(make_clip(d / "full.mkv", frames=25).read_bytes())
    (d / "full.mkv").unlink()
    mid = len(data) // 2
    data[mid : mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (d / "damaged.mkv").write_bytes(bytes(data))
    return ["run", "damaged.mkv", "out.mkv"]


def empty(d: Path) -> list[str]:
    (d / "empty.mp4").write_bytes(b"")
    return ["run", "empty.mp4", "out.mp4"]


def noise(d: Path) -> list[str]:
    (d / "noise.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return ["run", "noise.mp4", "out.mp4"]


def png_as_mp4(d: Path) -> list[str]:
    make_png(d / "photo.png", 64, 48)
    (d / "photo.png").rename(d / "photo.mp4")
    return ["run", "photo.mp4", "out.mp4"]


def text_as_mp4(d: Path) -> list[str]:
    (d / "notes.mp4").write_text("this is not a film\n" * 50)
    return ["run", "notes.mp4", "out.mp4"]


def missing_input(d: Path) -> list[str]:
    return ["run", "nothere.mp4", "out.mp4"]


def existing_output(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    (d / "out.mp4").write_bytes(b"keep me")
    return ["run", "film.mp4", "out.mp4"]


def concurrent(d: Path) -> list[str]:
    # A second run on the same OUT while the first holds its lock: refused, the first unharmed.
    make_clip(d / "film.mp4", frames=200)
    first = subprocess.Popen(
        [*CLI, "run", "film.mp4", "out.mp4", "--quiet"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".") and "out" in p.name for p in d.iterdir()):
        time.sleep(0.1)
    (d / "first.pid").write_text(str(first.pid))
    return ["run", "film.mp4", "out.mp4", "--overwrite"]


def pickle_weights(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    import io
    import zipfile

    # A torch-style zip archive whose data.pkl runs a command when unpickled.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"state_dict": Evil()}))
        z.writestr("archive/version", "3\n")
    (d / "evil.pth").write_bytes(buf.getvalue())
    return ["run", "film.mp4", "out.mp4", "--model", "deoldify-video:evil.pth"]


def bad_safetensors_header(d: Path) -> list[str]:
    make_clip(d / "film.mp4")
    (d / "huge-header.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    return ["run", "film.mp4", "out.mp4", "--model", "huge-header.safetensors"]


def lying_safetensors(d: Path) -> list[str]:
    # A header that declares a 2^40-element tensor over 8 bytes of data.
    make_clip(d / "film.mp4")
    header = json.dumps(
        {
            "w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 8]},
            "__metadata__": {"vidcolor": "{not json"},
        }
    ).encode()
    (d / "lying.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    return ["run", "film.mp4", "out.mp4", "--model", "lying.safetensors"]


def image_bomb(d: Path) -> list[str]:
    png_bomb(d / "bomb.png")
    return ["image", "bomb.png", "-o", "out"]


def batch_dangling(d: Path) -> list[str]:
    (d / "src").mkdir()
    make_clip(d / "src" / "a.mp4")
    (d / "src" / "gone.mp4").symlink_to(d / "src" / "deleted.mp4")
    return ["batch", "src", "dst", "--workers", "1"]


def batch_empty_store(d: Path) -> list[str]:
    (d / "src").mkdir()
    make_clip(d / "src" / "a.mp4")
    subprocess.run([*CLI, "batch", "src", "dst", "--workers", "1"], cwd=d, capture_output=True, check=True)
    (d / "dst" / ".vidcolor" / "jobs.sqlite").write_bytes(b"")
    for extra in ("jobs.sqlite-wal", "jobs.sqlite-shm"):
        (d / "dst" / ".vidcolor" / extra).unlink(missing_ok=True)
    return ["batch", "src", "dst", "--workers", "1"]


def frames_of(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def ordered_avi(d: Path) -> str:
    pts = [f.pts for f in frames_of(d / "out.avi")]
    return "" if all(a < b for a, b in zip(pts, pts[1:])) and len(pts) == 12 else f"timestamps {pts}"


def size_kept(width: int, height: int, name: str) -> Callable[[Path], str]:
    def check(d: Path) -> str:
        f = frames_of(d / name)[0]
        return "" if (f.width, f.height) == (width, height) else f"{f.width}x{f.height}"

    return check


def field_kept(d: Path) -> str:
    with av.open(str(d / "out.mp4")) as c:
        return "" if c.streams.video[0].codec_context.field_order == 2 else "progressive"


def dangling_listed(d: Path) -> str:
    report = json.loads((d / "dst" / ".vidcolor" / "report.json").read_text())
    return "" if any("gone.mp4" in s.get("src", "") for s in report.get("skipped", [])) else "dangling link not listed"


def cases(huge: int) -> list[Case]:
    return [
        Case("plain run (control)", args_run(clip(), "out.mp4"), True, ("out.mp4",)),
        Case("input named like a temporary", temp_named_input, True, ("film.mp4",)),
        Case("OUT is IN", same_as_input, False),
        Case("OUT exists, no --overwrite", existing_output, False),
        Case("OUT is a directory", out_is_dir, False),
        Case("OUT's folder missing", out_missing_dir, False),
        Case("OUT's folder is a file", out_under_a_file, False),
        Case("IN missing", missing_input, False),
        Case("IN empty", empty, False),
        Case("IN random bytes", noise, False),
        Case("IN a PNG named .mp4", png_as_mp4, False),
        Case("IN a text file named .mp4", text_as_mp4, False),
        Case("IN truncated mp4 (no index)", truncated, False),
        Case("IN mkv cut mid-cluster", cut_mkv, True, ("out.mkv",)),
        Case("IN damaged in the middle", damaged_middle, True, ("out.mkv",)),
        Case(
            "odd 321x241 4:4:4 -> x264",
            args_run(clip("f.mkv", width=321, height=241, codec="ffv1", pix_fmt="yuv444p", audio=False), "out.mp4"),
            True,
            ("out.mp4",),
            check=size_kept(321, 241, "out.mp4"),
        ),
        Case(
            "odd 321x241 4:2:0 -> x264 (padded, warned)",
            args_run(clip("f.mkv", width=321, height=241, codec="ffv1", audio=False), "out.mp4"),
            True,
            ("out.mp4",),
            check=size_kept(322, 242, "out.mp4"),
        ),
        Case(
            "10-bit 4:2:2 -> ffv1",
            args_run(clip("f.mkv", codec="ffv1", pix_fmt="yuv422p10le", audio=False), "out.mkv", "--codec", "ffv1"),
            True,
            ("out.mkv",),
        ),
        Case(
            "interlaced tff -> x264",
            args_run(clip("f.mkv", codec="ffv1", field_order=2, audio=False), "out.mp4"),
            True,
            ("out.mp4",),
            check=field_kept,
        ),
        Case("AVI output (no B-frame disorder)", args_run(clip(), "out.avi"), True, ("out.avi",), check=ordered_avi),
        Case("--frames excerpt 5:15", args_run(clip(), "out.mp4", "--frames", "5:15"), True, ("out.mp4",)),
        Case("--frames past the end", args_run(clip(), "out.mp4", "--frames", "5000:"), False),
        Case("--frames backwards", args_run(clip(), "out.mp4", "--frames", "9:3"), False),
        Case("--frames not a range", args_run(clip(), "out.mp4", "--frames", "ten"), False),
        Case(
            "SIGTERM midway, then rerun",
            args_run(clip(frames=300), "out.mp4", "--quiet"),
            True,
            ("out.mp4",),
            interrupt=signal.SIGTERM,
            resume=True,
        ),
        Case("SIGINT midway", args_run(clip(frames=300), "out.mp4", "--quiet"), False, interrupt=signal.SIGINT),
        Case("SIGHUP midway", args_run(clip(frames=300), "out.mp4", "--quiet"), False, interrupt=signal.SIGHUP),
        Case("second run on a locked OUT", concurrent, False),
        Case("malicious pickle as DeOldify weights", pickle_weights, False),
        Case("safetensors header claims 1 TB", bad_safetensors_header, False),
        Case("safetensors tensor larger than file", lying_safetensors, False),
        Case("PNG declaring 100000x100000", image_bomb, False),
        Case("batch with a dangling symlink", batch_dangling, True, ("dst/a.mp4",), check=dangling_listed),
        Case("batch with a 0-byte jobs.sqlite", batch_empty_store, False),
        Case(
            f"huge {huge}x{huge} PNG",
            lambda d: ["image", make_png(d / "huge.png", huge, huge).name, "-o", "out"],
            True,
            ("out/huge.png",),
        ),
    ]


# -- running and checking ------------------------------------------------------------------------
def snapshot(d: Path) -> dict[str, str]:
    out = {}
    for p in d.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_child(d: Path, args: list[str], interrupt: int | None) -> tuple[int, str, float]:
    """Run the CLI in ``d``; with ``interrupt``, send it once the run's temporary output exists."""
    proc = subprocess.Popen([*CLI, *args], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if interrupt is not None:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if any(p.name.startswith(".out") for p in d.iterdir()):
                time.sleep(1.0)  # some frames encoded
                break
            time.sleep(0.05)
        proc.send_signal(interrupt)
    text = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, text, usage.ru_maxrss / 1024


def one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith(("error", "vidcolor: error", "warning"))]
    return (errors[-1] if errors else lines[-1] if lines else "")[:110]


def evaluate(case: Case, d: Path) -> Row:
    args = case.setup(d)
    before = snapshot(d)
    t0 = time.perf_counter()
    rc, text, peak = run_child(d, args, case.interrupt)
    if case.resume:
        rc2, text2, peak2 = run_child(d, args, None)
        text, peak = text + text2, max(peak, peak2)
        rc = rc2 if rc != 0 else 99  # the interrupted run must fail, its rerun succeed
    seconds = time.perf_counter() - t0
    if (d / "first.pid").exists():  # the concurrent case: let the first run finish, then check it
        pid = int((d / "first.pid").read_text())
        (d / "first.pid").unlink()
        before.pop("first.pid", None)
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower():
            time.sleep(0.2)
    after = snapshot(d)
    # Inputs: what was there before the run, less the first run's temporary and lock (concurrent case) and
    # the batch state folder (the job's own bookkeeping, which a run rewrites).
    inputs = {
        k: v
        for k, v in before.items()
        if ".partial" not in k and not k.endswith(".lock") and not k.startswith("dst/.vidcolor/")
    }
    intact = all(after.get(k) == v for k, v in inputs.items())
    expected = set(case.outputs) if case.ok else set()
    if case.name == "second run on a locked OUT":
        expected = {"out.mp4"}  # the first run's output
    report_dirs = ("dst/.vidcolor/",)
    new = [k for k in after if k not in before and k not in expected and not k.startswith(report_dirs)]
    new += [str(p.relative_to(d)) for p in d.rglob("*") if p.is_symlink() and not p.exists() and p.name != "gone.mp4"]
    valid = True
    detail = ""
    if case.ok and rc == 0:
        for name in case.outputs:
            p = d / name
            try:
                if p.suffix == ".png":
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                        with Image.open(p) as im:
                            im.verify()
                elif not frames_of(p):
                    valid = False
            except Exception as exc:  # noqa: BLE001 - any failure to read counts as invalid
                valid, detail = False, str(exc)[:60]
        if valid and case.check is not None:
            detail = case.check(d)
            valid = not detail
    elif not case.ok:
        valid = not any(k for k in after if k not in before and k in case.outputs)
    traceback = "Traceback (most recent call last)" in text
    outcome_ok = (rc == 0) == case.ok
    message = detail or one_line(text)
    row = Row(case.name, rc, message, traceback, new, intact, valid, seconds, peak)
    row.clean = outcome_ok and not traceback and not new and intact and valid and (d / "PWNED").exists() is False
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--huge", type=int, default=12000, help="side of the huge-picture case (pixels)")
    ap.add_argument("--keep", type=Path, default=None, help="keep every case's folder under this one")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vidcolor-torture-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, case in enumerate(c for c in cases(args.huge) if args.only in c.name):
        d = root / f"case{i:02d}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        row = evaluate(case, d)
        rows.append(row)
        print(
            f"{'ok ' if row.clean else 'BAD'} {row.case}: rc {row.rc}, {row.seconds:.1f} s, {row.peak_mb:.0f} MB  "
            f"{row.message}",
            file=sys.stderr,
        )
        for p in d.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
    print("| case | exit | message | traceback? | stray files? | input intact? | output valid? | peak RSS | clean |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        msg = r.message.replace("|", "/")
        print(
            f"| {r.case} | {r.rc} | {msg} | {'yes' if r.traceback else 'no'} | {', '.join(r.strays) or 'none'} | "
            f"{'yes' if r.input_intact else 'NO'} | {'yes' if r.output_valid else 'NO'} | {r.peak_mb:.0f} MB | "
            f"{'yes' if r.clean else 'NO'} |"
        )
    bad = sum(not r.clean for r in rows)
    print(f"\n{len(rows) - bad}/{len(rows)} cases clean")
    if args.keep is None:
        for p in root.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
