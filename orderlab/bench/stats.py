"""Pure number-crunching for the bench: percentiles, sustained rates, rate errors.

Kept apart from the Kafka code so it is tested without a broker.
"""

from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def time_to_reach(timeline: Sequence[tuple[float, int]], count: float) -> float | None:
    """When a non-decreasing ``(t, done)`` timeline first reaches ``count`` (interpolated)."""
    previous: tuple[float, int] | None = None
    for t, done in timeline:
        if done >= count:
            if previous is None or done == previous[1]:
                return t
            t0, d0 = previous
            return t0 + (t - t0) * (count - d0) / (done - d0)
        previous = (t, done)
    return None


def sustained_rate(timeline: Sequence[tuple[float, int]], total: int, low: float = 0.1, high: float = 0.9) -> float:
    """Completions per second between ``low`` and ``high`` fractions of ``total``.

    Leaves out the start (clients joining groups, the first fetches) and the
    tail (the last partial batches), so the figure is the steady rate the
    system keeps up, not its burst or its ramp. NaN when the window was not reached.
    """
    start = time_to_reach(timeline, low * total)
    end = time_to_reach(timeline, high * total)
    if start is None or end is None or end <= start:
        return math.nan
    return (high - low) * total / (end - start)


def rate_error_pct(requested: float, achieved: float) -> float:
    """How far ``achieved`` is from ``requested``, in percent of ``requested``."""
    if requested <= 0:
        raise ValueError("requested rate must be positive")
    return abs(achieved - requested) / requested * 100.0
