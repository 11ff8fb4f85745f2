"""The job report: every item of a run with its outcome, written to DST/.vidcolor/report.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# What happened to an item in this run.
OUTCOMES = ("done", "failed", "up-to-date", "adopted", "interrupted")


@dataclass(frozen=True)
class ItemOutcome:
    key: str
    src: str
    dst: str
    kind: str
    outcome: str  # one of OUTCOMES
    state: str  # the store's state afterwards
    attempts: int
    error: str | None
    frames: int | None
    seconds: float | None
    completions: int  # times this output has been produced, over all runs
    content_hash: str
    settings_hash: str
    note: str = ""
    warnings: list[str] = field(default_factory=list)  # of the attempt that produced the output


@dataclass
class JobReport:
    dst: str
    engine: str
    settings: dict[str, Any]
    started: str
    finished: str = ""
    interrupted: bool = False
    items: list[ItemOutcome] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # non-media files: src, reason

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.interrupted

    def totals(self) -> dict[str, int]:
        totals = {o: self.count(o) for o in OUTCOMES}
        totals["items"] = len(self.items)
        totals["skipped_files"] = len(self.skipped)
        totals["with_warnings"] = sum(1 for i in self.items if i.outcome == "done" and i.warnings)
        totals["frames"] = sum(i.frames or 0 for i in self.items if i.outcome in ("done", "adopted"))
        return totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "dst": self.dst,
            "engine": self.engine,
            "settings": self.settings,
            "started": self.started,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "totals": self.totals(),
            "items": [asdict(i) for i in self.items],
            "skipped": self.skipped,
        }

    def write(self, path: Path) -> None:
        """Atomically (temp file + rename), like every other output."""
        from vidcolor.media.outfile import atomic_write

        text = (json.dumps(self.to_dict(), indent=2) + "\n").encode()
        atomic_write(path, lambda f: f.write(text), overwrite=True)
