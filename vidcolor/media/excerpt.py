"""A run's excerpt: the frames ``A:B`` of a film (``vidcolor run --frames``), for previews."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidcolor.errors import InputError

_RANGE = re.compile(r"^\s*(\d*)\s*:\s*(\d*)\s*$")


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive; None: to the end), counted from 0 in
    decoding order, as the frame indices of references and hints are."""

    start: int = 0
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise InputError(f"--frames {self}: needs 0 <= A < B")

    def __str__(self) -> str:
        return f"{self.start}:{'' if self.stop is None else self.stop}"

    @property
    def count(self) -> int | None:
        """Frames in the range (None: open-ended)."""
        return None if self.stop is None else self.stop - self.start

    @classmethod
    def parse(cls, text: str) -> FrameRange:
        """``A:B``, ``A:`` or ``:B`` -> FrameRange; anything else is a one-line InputError."""
        m = _RANGE.match(text)
        if m is None or not (m.group(1) or m.group(2)):
            raise InputError(f"--frames must be A:B, A: or :B (frame numbers from 0, B not included), not {text!r}")
        start = int(m.group(1)) if m.group(1) else 0
        stop = int(m.group(2)) if m.group(2) else None
        if stop is not None and stop <= start:
            raise InputError(f"--frames {text}: B must be greater than A")
        return cls(start, stop)
