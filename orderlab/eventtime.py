"""Event time and processing time (lesson 04), as pure functions over the analytics frames.

Every order carries two times. ``created_at`` is its **event time**: when
the order was made, set by whoever made it. ``seen_at`` is its
**processing time**: when the analytics role read it. They differ by the
trip through Kafka (milliseconds), or by much more for a **late** record, one
that was made earlier and sent later (a phone that was offline, a batch
uploaded at night).

A **tumbling window** cuts time into back-to-back slices of one width (10 s:
12:00:00–12:00:10, 12:00:10–12:00:20...) and aggregates each. By event time,
a late record lands in an earlier window, one that may have looked complete
already; by processing time it lands in the current one, where it did not
happen. :func:`late_effect` shows both for the records added between two
readings of the frames.

Times are unix seconds in the frames (floats); :func:`readable` turns them
into pandas timestamps (UTC) for people.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

TIME_COLUMNS = ("created_at", "seen_at", "processed_at")
CLOCKS = {"created_at": "by event time (created_at)", "seen_at": "by processing time (seen_at)"}


def readable(frame: pd.DataFrame, columns: Iterable[str] = TIME_COLUMNS) -> pd.DataFrame:
    """A copy of ``frame`` with its unix-time columns (those of ``columns`` it has) as pandas timestamps, UTC.

    Cut to the millisecond (floored, so a time never crosses into the next
    window); the frames keep the full float.
    """
    copy = frame.copy()
    for column in columns:
        if column in copy.columns:
            copy[column] = pd.to_datetime(copy[column], unit="s", utc=True).dt.floor("ms")
    return copy


def window_start(unix_time: float, width: str = "10s") -> pd.Timestamp:
    """The start of the tumbling window of ``width`` that ``unix_time`` falls in."""
    return pd.Timestamp(unix_time, unit="s", tz="UTC").floor(width)


def window_counts(orders: pd.DataFrame, clock: str, width: str = "10s") -> pd.Series:
    """Orders per tumbling window of ``width`` by ``clock`` (``created_at`` or ``seen_at``), indexed by window start.

    Every window from the first to the last is present; a quiet one counts 0.
    """
    if orders.empty:
        return pd.Series(dtype="int64", index=pd.DatetimeIndex([], tz="UTC", name="window"), name="orders")
    times = pd.to_datetime(orders[clock], unit="s", utc=True)
    counts = pd.Series(1, index=pd.DatetimeIndex(times)).sort_index().resample(width).sum()
    return counts.rename("orders").rename_axis("window")


def late_effect(before: pd.DataFrame, after: pd.DataFrame, width: str = "10s") -> pd.DataFrame:
    """The windows whose order count changed between two readings of the orders frame, by event and by processing time.

    One row per window that changed, one column per clock, the change in
    orders: a late record adds 1 to an old window by event time and 1 to the
    current window by processing time.
    """
    changes = {}
    for clock, label in CLOCKS.items():
        was, now = window_counts(before, clock, width), window_counts(after, clock, width)
        changes[label] = now.sub(was, fill_value=0).astype("int64")
    table = pd.DataFrame(changes).fillna(0).astype("int64").rename_axis("window")
    return table[(table != 0).any(axis=1)]
