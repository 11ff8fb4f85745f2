"""One work item, run inside a worker process (a local pool process or a Ray worker).

A worker loads the model once and keeps it for every item it is given. Each attempt writes into
its own staging folder under DST/.vidcolor/staging (the writers' temp files land there too) and
the finished file is renamed onto its final path: the output appears whole or not at all, and a
job killed at any moment leaves its debris only in staging, which the next run clears.
Workers never touch the job store; they return an ``ItemResult`` to the coordinator.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcolor.errors import VidcolorError
from vidcolor.jobs.settings import JobSettings
from vidcolor.media.outfile import temp_beside

ProgressSink = Callable[[str, int, "int | None"], None]  # item key, frames done, expected total
StopCheck = Callable[[], bool]
PROGRESS_INTERVAL = 0.25  # seconds between progress messages of one item


@dataclass(frozen=True)
class ItemTask:
    key: str
    src: str
    kind: str  # video | image
    final: str  # absolute output path
    staging: str  # absolute folder this attempt may write in (removed afterwards)
    attempt: int


@dataclass(frozen=True)
class ItemResult:
    key: str
    ok: bool
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    cancelled: bool = False  # stopped on request: not the item's fault, not a failed attempt
    worker: str = ""
    warnings: tuple[str, ...] = ()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """A worker's state: the settings and the model, loaded on first use and then kept."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings
        self._model: Any = None
        self._image_colorizer: Any = None

    def model(self) -> Any:
        if self._model is None:
            from vidcolor.models.registry import load_model

            self._model = load_model(self.settings.run.model)
        return self._model

    def image_colorizer(self) -> Any:
        if self._image_colorizer is None:
            from vidcolor.colorizer import Colorizer

            self._image_colorizer = Colorizer(self.model(), self.settings.run.render, video=False)
        return self._image_colorizer

    def run(
        self, task: ItemTask, progress: ProgressSink | None = None, should_stop: StopCheck | None = None
    ) -> ItemResult:
        """Produce ``task.final``; never raises for a bad item (the error is in the result)."""
        t0 = time.perf_counter()
        staging = Path(task.staging)
        final = Path(task.final)
        staged = staging / final.name
        me = worker_name()
        from vidcolor.video.run import RunCancelled

        try:
            staging.mkdir(parents=True, exist_ok=True)
            if task.kind == "video":
                frames, warnings = self._video(task, staged, progress, should_stop)
            else:
                frames, warnings = self._image(task, staged, progress)
            place(staged, final)
            return ItemResult(task.key, True, frames, time.perf_counter() - t0, worker=me, warnings=warnings)
        except VidcolorError as exc:
            cancelled = isinstance(exc, RunCancelled)
            return ItemResult(
                task.key, False, seconds=time.perf_counter() - t0, error=str(exc), cancelled=cancelled, worker=me
            )
        except KeyboardInterrupt:
            return ItemResult(task.key, False, error="interrupted", cancelled=True, worker=me)
        except Exception as exc:  # one file's bug or damage must not stop the archive: record it
            return ItemResult(
                task.key, False, seconds=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}", worker=me
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _video(
        self, task: ItemTask, staged: Path, progress: ProgressSink | None, should_stop: StopCheck | None
    ) -> tuple[int, tuple[str, ...]]:
        from vidcolor.jobs.settings import anchor_folders
        from vidcolor.video.anchors import AnchorFiles
        from vidcolor.video.run import colorize_video

        last = [0.0]

        def on_frames(done: int, total: int | None) -> None:
            now = time.monotonic()
            if progress is not None and now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                progress(task.key, done, total)

        folders = anchor_folders(self.settings, task.key)
        anchors = AnchorFiles.from_paths(hints=folders.get("hints", []), references=folders.get("references", []))
        run = self.settings.run
        report = colorize_video(
            task.src,
            staged,
            self.model(),
            run,
            anchors=anchors,
            overwrite=True,
            progress=on_frames,
            should_stop=should_stop,
        )
        return report.frames, tuple(report.warnings)

    def _image(self, task: ItemTask, staged: Path, progress: ProgressSink | None) -> tuple[int, tuple[str, ...]]:
        from vidcolor.stills import colorize_image_file

        colorize_image_file(task.src, staged, self.image_colorizer(), overwrite=True)
        if progress is not None:
            progress(task.key, 1, 1)
        return 1, ()


def stale_temps(final: Path) -> list[Path]:
    """Temp files ``place`` may have left beside ``final`` when killed mid-copy."""
    return list(final.parent.glob(f".{glob.escape(final.name)}.*.partial")) if final.parent.is_dir() else []


def place(staged: Path, final: Path) -> None:
    """Move the finished file onto its final path atomically. Staging is under DST, so this is a
    rename; where part of DST is another filesystem (a mounted subfolder), copy to a temp file
    beside the target first, then rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staged, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = temp_beside(final)
        try:
            shutil.copyfile(staged, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


# One Worker per process. ProcessPoolExecutor's initializer and Ray's reused worker processes can
# hand state to later tasks only through the process itself, so this is the one module-level
# variable: it is what "load the model once per worker" means.
_PROCESS_WORKER: Worker | None = None


def process_worker(settings: JobSettings) -> Worker:
    global _PROCESS_WORKER
    if _PROCESS_WORKER is None or _PROCESS_WORKER.settings != settings:
        _PROCESS_WORKER = Worker(settings)
    return _PROCESS_WORKER


def set_threads(threads: int) -> None:
    """Split the CPU between workers instead of every worker using every core."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def die_with_parent() -> None:
    """Linux: the kernel kills this worker when the coordinator dies (even by kill -9), so an
    orphan never finishes an item behind a resumed job's back."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the parent check in should_stop still ends the worker after its batch
