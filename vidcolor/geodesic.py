"""Geodesic (edge-aware) nearest-seed fill: pure tensor functions.

A colour hint must colour the thing it is on and nothing else. Its reach is measured as a
*geodesic* distance: the cheapest path from the hint to a pixel, where every step costs its length
plus ``edge`` times the brightness change it crosses. Inside one object the distance grows slowly
with length; out of it, it grows by at least ``edge`` times the brightness step at its outline,
however soft that outline is (a path's total brightness change is at least the step, whatever way
it takes round). Each pixel takes the value of its geodesically nearest seed and a weight that
fades with that distance, so a hint fills its region and stops at the region's edges, however close
another object of similar brightness is. (Texture inside an object is smoothed away from the guide
first by the caller: vidcolor.hints.)

The distance is found by alternating straight sweeps along rows and columns (4-connected paths):
along a line, the cheapest arrival at x from any x' before it is
``P(x) + min_{x' <= x} (D(x') - P(x'))`` with P the prefix sum of step costs, one ``cummin``, and
its argmin says which seed's value arrives. A few rounds of the four directions let paths turn as
often as real objects need.
"""

from __future__ import annotations

import torch


def step_costs(guide: torch.Tensor, edge: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Costs of a step between 4-neighbours of ``guide`` (B,1,h,w) in [0,1]: (along rows (B,1,h,w-1),
    along columns (B,1,h-1,w)). A step's length is 1/longer side, so distances are in picture sizes;
    its edge cost is ``edge`` times the brightness change it crosses."""
    unit = 1.0 / max(guide.shape[-2:])
    across = unit + edge * (guide[..., :, 1:] - guide[..., :, :-1]).abs()
    down = unit + edge * (guide[..., 1:, :] - guide[..., :-1, :]).abs()
    return across, down


def _sweep(dist: torch.Tensor, value: torch.Tensor, cost: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward sweep along ``dim`` (-1: rows, -2: columns): each pixel takes the cheapest arrival
    from any pixel before it on its line, and that pixel's value."""
    pad = [0, 0, 0, 0]
    pad[0 if dim == -1 else 2] = 1  # a zero-cost step before the first pixel
    prefix = torch.nn.functional.pad(cost, pad).cumsum(dim)
    best, where = torch.cummin(dist - prefix, dim)
    arrived = best + prefix
    better = arrived < dist
    dist = torch.where(better, arrived, dist)
    gathered = value.gather(dim, where.expand_as(value))
    return dist, torch.where(better, gathered, value)


def geodesic_fill(
    values: torch.Tensor, seeds: torch.Tensor, guide: torch.Tensor, edge: float, rounds: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-seed fill: ``values`` (B,C,h,w) read at the ``seeds`` (B,1,h,w) bool pixels, spread
    to every pixel from its geodesically nearest seed over ``guide`` (B,1,h,w) in [0,1] ->
    (filled values (B,C,h,w), geodesic distance (B,1,h,w), ``inf`` where no seed is).

    ``edge``: the cost of crossing a full black-to-white edge, in picture sizes (0: plain 4-connected
    distance). ``rounds``: passes of the four sweeps (each lets a path turn twice more)."""
    if rounds < 1 or edge < 0:
        raise ValueError("geodesic_fill needs rounds >= 1 and edge >= 0")
    across, down = step_costs(guide.to(values.dtype), edge)
    dist = torch.where(seeds, 0.0, float("inf")).to(values.dtype)
    value = torch.where(seeds, values, torch.zeros_like(values))
    for _ in range(rounds):
        for dim, cost in ((-1, across), (-2, down)):
            dist, value = _sweep(dist, value, cost, dim)
            flipped_dist, flipped_value = _sweep(dist.flip(dim), value.flip(dim), cost.flip(dim), dim)
            dist, value = flipped_dist.flip(dim), flipped_value.flip(dim)
    return value, dist
