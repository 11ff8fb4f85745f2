"""Run items in the coordinator's own process, one at a time (``--workers 0``: debugging, tests)."""

from __future__ import annotations

from collections import deque

from vidcolor.jobs.executors.base import ProgressEvent
from vidcolor.jobs.settings import JobSettings
from vidcolor.jobs.work import ItemResult, ItemTask, Worker


class InlineExecutor:
    name = "inline"

    def __init__(self, settings: JobSettings) -> None:
        self.worker = Worker(settings)
        self._tasks: deque[ItemTask] = deque()
        self._events: list[ProgressEvent] = []
        self._stop = False

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return 1

    def submit(self, task: ItemTask) -> None:
        self._tasks.append(task)

    def wait(self, timeout: float) -> list[ItemResult]:
        if not self._tasks:
            return []
        task = self._tasks.popleft()
        return [self.worker.run(task, self._on_progress, lambda: self._stop)]

    def _on_progress(self, key: str, frames: int, total: int | None) -> None:
        self._events.append(ProgressEvent(key, frames, total))

    def progress(self) -> list[ProgressEvent]:
        events, self._events = self._events, []
        return events

    def close(self, cancel: bool = False) -> None:
        self._stop = cancel
        self._tasks.clear()
