"""How fast each consumer group's lag grows over a window: the bottleneck, measured.

A group whose lag grows cannot keep up with what is written to the topics it
reads; a group whose lag stays flat keeps up, however large its lag. The
growth is the least-squares slope of a group's lag against time, in records
per second (negative while it drains), over the samples the control room
takes about once a second. One sample more or less, or a sample late by a
few hundred milliseconds, hardly moves a slope, where the difference of the
first and last sample would jump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .chartdata import Sample, short_group_name


@dataclass(frozen=True)
class LagGrowth:
    """Each group's lag growth (short group name → records per second) over ``seconds``, from ``samples`` samples."""

    per_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples: int = 0


def lag_growth(samples: Sequence[Sample], since: float, until: float) -> LagGrowth:
    """The lag growth of every group measured in the samples taken from ``since`` to ``until`` (inclusive).

    A group needs two samples in the window for a slope; groups with fewer are left out.
    """
    inside = [s for s in samples if since <= s.at <= until and s.lag]
    series: dict[str, tuple[list[float], list[float]]] = {}
    for sample in inside:
        for group, behind in sample.lag.items():
            times, values = series.setdefault(short_group_name(group), ([], []))
            times.append(sample.at)
            values.append(float(behind))
    per_s: dict[str, float] = {}
    for group, (times, values) in series.items():
        if len(times) >= 2 and times[-1] > times[0]:
            t = np.asarray(times) - times[0]
            per_s[group] = round(float(np.polyfit(t, np.asarray(values), 1)[0]), 1)
    seconds = inside[-1].at - inside[0].at if len(inside) >= 2 else 0.0
    return LagGrowth(per_s, round(seconds, 1), len(inside))
