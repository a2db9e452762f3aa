"""The trade-off of an edit's strength: settings scored on fidelity to the photo and on the edit, both
higher-is-better; which of them no other beats on both (the Pareto front), and the one to recommend.

The rule (`choose`): the edit must be there first, then as much of the photo kept as possible. Of the
settings whose edit score is within `tolerance` of the best one (as a fraction of the range of edit
scores over the grid, so that it means the same for CLIP scores and for 0/1 readings), take the most
faithful; ties go to the higher edit score, then to the first given. That setting is always on the
front: one that beat it on both axes would qualify too and be at least as faithful.
"""
from __future__ import annotations

import math
from typing import Sequence

Point = tuple[float, float]  # (fidelity, edit score)
DEFAULT_TOLERANCE = 0.1  # a tenth of the grid's range of edit scores: "nearly the strongest edit"


def dominates(first: Point, second: Point) -> bool:
    """At least as good on both axes and better on one."""
    return first[0] >= second[0] and first[1] >= second[1] and (first[0] > second[0] or first[1] > second[1])


def scored(point: Point) -> bool:
    return not any(math.isnan(value) for value in point)


def pareto_front(points: Sequence[Point]) -> list[bool]:
    """For each point, whether no other dominates it. Equal points are all on the front; a point
    with a NaN (a score that could not be computed) is never on it and never dominates."""
    usable = [point for point in points if scored(point)]
    return [scored(point) and not any(dominates(other, point) for other in usable) for point in points]


def choose(points: Sequence[Point], tolerance: float = DEFAULT_TOLERANCE) -> int | None:
    """The index of the recommended point by the rule above; None when no point is scored."""
    candidates = [index for index, point in enumerate(points) if scored(point)]
    if not candidates:
        return None
    edits = [points[index][1] for index in candidates]
    floor = max(edits) - tolerance * (max(edits) - min(edits))
    qualified = [index for index in candidates if points[index][1] >= floor]
    return max(qualified, key=lambda index: (points[index][0], points[index][1], -index))
