"""Long work off the request path: one job at a time (a preview or a render), with progress and
cancel. A second tab, or the page reloaded, sees the running job instead of starting another."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from vidcolor.errors import VidcolorError

# A job's work: (report progress (done, total or None), should stop?) -> a one-line result.
Work = Callable[[Callable[[int, "int | None"], None], Callable[[], bool]], str]


@dataclass
class JobState:
    kind: str = ""  # "preview" | "render"; "" before the first job
    state: str = "idle"  # idle | running | done | failed | cancelled
    done: int = 0
    total: int | None = None
    started: float = 0.0
    finished: float = 0.0
    message: str = ""
    serial: int = 0  # counts jobs, so the page knows a new result from an old one

    def public(self) -> dict:
        doc = asdict(self)
        elapsed = (self.finished or time.monotonic()) - self.started if self.started else 0.0
        doc["fps"] = round(self.done / elapsed, 2) if elapsed > 0 else 0.0
        left = (self.total - self.done) / doc["fps"] if self.total and doc["fps"] > 0 else None
        doc["seconds_left"] = round(left, 1) if left is not None and self.state == "running" else None
        doc.pop("started"), doc.pop("finished")
        return doc


class JobRunner:
    """Runs one job at a time on its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = JobState()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def state(self) -> dict:
        with self._lock:
            return self._state.public()

    def busy(self) -> bool:
        with self._lock:
            return self._state.state == "running"

    def start(self, kind: str, work: Work) -> bool:
        """Start ``work`` unless a job is running (then False: the page shows the running one)."""
        with self._lock:
            if self._state.state == "running":
                return False
            self._cancel.clear()
            self._state = JobState(kind, "running", started=time.monotonic(), serial=self._state.serial + 1)
            self._thread = threading.Thread(target=self._run, args=(work,), name=f"vidcolor-studio-{kind}", daemon=True)
            self._thread.start()
            return True

    def cancel(self) -> bool:
        with self._lock:
            running = self._state.state == "running"
        if running:
            self._cancel.set()
        return running

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        """Cancel the running job and wait for it to clean up (its partial file goes)."""
        self.cancel()
        self.wait(60)

    def _progress(self, done: int, total: int | None) -> None:
        with self._lock:
            self._state.done, self._state.total = done, total

    def _run(self, work: Work) -> None:
        try:
            message = work(self._progress, self._cancel.is_set)
            outcome = "done"
        except VidcolorError as exc:
            outcome = "cancelled" if self._cancel.is_set() else "failed"
            message = str(exc)
        except Exception as exc:  # a bug must not kill the server: it is shown in the page
            outcome, message = "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._state.state, self._state.message = outcome, message
            self._state.finished = time.monotonic()
