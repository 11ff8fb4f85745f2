"""What the coordinator needs of an executor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vidcolor.jobs.work import ItemResult, ItemTask


@dataclass(frozen=True)
class ProgressEvent:
    key: str
    frames: int
    total: int | None


class Executor(Protocol):
    name: str

    def start(self) -> None:
        """Bring workers up (pool processes, a Ray connection)."""
        ...

    def capacity(self) -> int:
        """How many items to keep in flight: the coordinator marks an item running when it submits
        it, so this should be about what actually runs at once."""
        ...

    def submit(self, task: ItemTask) -> None: ...

    def wait(self, timeout: float) -> list[ItemResult]:
        """Results finished since the last call (waits up to ``timeout`` for the first one)."""
        ...

    def progress(self) -> list[ProgressEvent]:
        """Frame progress reported by running items since the last call."""
        ...

    def close(self, cancel: bool = False) -> None:
        """Stop the workers; ``cancel`` asks running items to stop early (no partial output)."""
        ...
