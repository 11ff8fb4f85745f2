"""Where a person's anchors still reach, frame by frame: pure functions over the film's scan.

The temporal stage carries an anchor's colour along the optical flow through its shot: forward to
the shot's end, back over its look-ahead, trusting each step as far as the flow explains the next
frame. The studio estimates that reach from the scan's per-frame trust (``follow``: the mean flow
trust from the frame before): an anchor's reach at frame i is the product of the trusts between
them, and a frame's coverage the best reach of any anchor. A shot without an anchor is uncovered.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

WELL_COVERED = 0.5  # coverage under this: the model's own colour shows through (a new anchor helps)


def shot_of(index: int, shot_starts: list[int]) -> int:
    """The position in ``shot_starts`` of the shot holding frame ``index``."""
    return max(0, bisect_right(shot_starts, index) - 1)


def coverage(shot_starts: list[int], follow: list[float], anchors: list[int], lookahead: int) -> list[float]:
    """Per frame, in [0, 1]: how much of the anchors' colour the temporal stage still carries there."""
    n = len(follow)
    cover = [0.0] * n
    ends = shot_starts[1:] + [n]
    for anchor in anchors:
        if not 0 <= anchor < n:
            continue
        s = shot_of(anchor, shot_starts)
        start, end = shot_starts[s], ends[s]
        reach = 1.0
        cover[anchor] = 1.0
        for i in range(anchor + 1, end):  # forward, to the shot's end
            reach *= follow[i]
            cover[i] = max(cover[i], reach)
        reach = 1.0
        for i in range(anchor - 1, max(start, anchor - lookahead) - 1, -1):  # back, over the look-ahead
            reach *= follow[i + 1]
            cover[i] = max(cover[i], reach)
    return cover


@dataclass(frozen=True)
class Suggestion:
    frame: int
    frames_gained: int  # frames under WELL_COVERED from here to the shot's end that an anchor here would cover
    why: str


def suggest(shot_starts: list[int], follow: list[float], cover: list[float], limit: int = 5) -> list[Suggestion]:
    """The frames where a new anchor would cover most: in each shot, the first poorly covered
    frame, ranked by how many poorly covered frames follow it in its shot."""
    n = len(follow)
    ends = shot_starts[1:] + [n]
    found = []
    for s, start in enumerate(shot_starts):
        end = ends[s]
        first = next((i for i in range(start, end) if cover[i] < WELL_COVERED), None)
        if first is None:
            continue
        gained = sum(1 for i in range(first, end) if cover[i] < WELL_COVERED)
        anchored = any(c >= WELL_COVERED for c in cover[start:end])
        why = (
            f"shot {s + 1} has no anchor"
            if not anchored
            else f"shot {s + 1}: the anchors' colour fades here (motion the flow cannot follow)"
        )
        found.append(Suggestion(first, gained, why))
    found.sort(key=lambda g: (-g.frames_gained, g.frame))
    return found[:limit]
