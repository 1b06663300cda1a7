"""What the live charts plot, as pure functions over samples.

The control room samples the lab about once a second (:class:`Sample`);
these functions turn a list of samples, and the e-mail latencies, into
pandas frames indexed by "seconds ago" (negative numbers, 0 = now). Nothing
here touches Kafka, widgets or matplotlib, so tests feed hand-made samples.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

RATE_COLUMNS = ["orders in", "confirmed", "revenue"]
LATENCY_COLUMNS = ["p50", "p99"]


@dataclass(frozen=True)
class Sample:
    """The lab's counters at one moment (all totals since the lab started)."""

    at: float
    placed: int
    confirmed: int
    declined: int = 0
    emails_sent: int = 0
    revenue_cents: int = 0
    lag: Mapping[str, int] = field(default_factory=dict)


class History:
    """The last ``maxlen`` samples; appended by the refresher thread, read by anyone."""

    def __init__(self, maxlen: int = 600) -> None:
        self._lock = threading.Lock()
        self._samples: deque[Sample] = deque(maxlen=maxlen)

    def append(self, sample: Sample) -> None:
        with self._lock:
            if self._samples and sample.at <= self._samples[-1].at:
                return  # a sample must move time forward, or rates divide by zero
            self._samples.append(sample)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)


def _in_window(samples: Sequence[Sample], now: float, window_s: float) -> list[Sample]:
    return [s for s in samples if now - window_s <= s.at <= now]


def rates(samples: Sequence[Sample], now: float, window_s: float = 60.0) -> pd.DataFrame:
    """Per-second rates between consecutive samples: orders in, confirmed, revenue (currency units).

    The index is the later sample's time in seconds ago. A counter that went
    down (the lab was restarted) gives no rate for that step rather than a
    negative one.
    """
    recent = _in_window(samples, now, window_s)
    rows, index = [], []
    for before, after in zip(recent, recent[1:]):
        seconds = after.at - before.at
        deltas = (after.placed - before.placed, after.confirmed - before.confirmed, after.revenue_cents - before.revenue_cents)
        if seconds <= 0 or min(deltas) < 0:
            continue
        rows.append((deltas[0] / seconds, deltas[1] / seconds, deltas[2] / 100.0 / seconds))
        index.append(after.at - now)
    frame = pd.DataFrame(rows, columns=RATE_COLUMNS, index=pd.Index(index, name="seconds ago", dtype=float))
    return frame.astype(float)


def measured_rate(samples: Sequence[Sample], span_s: float = 3.0) -> float:
    """Orders placed per second over about the last ``span_s`` seconds (0 with fewer than two samples)."""
    if len(samples) < 2:
        return 0.0
    last = samples[-1]
    first = next((s for s in samples if s.at >= last.at - span_s - 1e-9), samples[-2])
    if first is last:
        first = samples[-2]
    seconds = last.at - first.at
    placed = last.placed - first.placed
    if seconds <= 0 or placed < 0:
        return 0.0
    return placed / seconds


def latency_percentiles(
    latencies: Iterable[tuple[float, float]], now: float, window_s: float = 60.0, bucket_s: float = 1.0
) -> pd.DataFrame:
    """Order → e-mail latency p50 and p99 in milliseconds, per ``bucket_s`` of sending time.

    ``latencies`` are ``(order created_at, e-mail sent_at)`` pairs. The index
    is the end of each bucket in seconds ago; buckets without e-mails are
    left out (a line with a gap, not a fake zero).

    Plain numpy (no pandas groupby): the live chart computes this every
    second over up to 20,000 pairs, in the process that runs the pipeline.
    """
    pairs = np.fromiter(chain.from_iterable(latencies), dtype=float).reshape(-1, 2)
    created, sent = pairs[:, 0], pairs[:, 1]
    recent = (now - window_s < sent) & (sent <= now)
    if not recent.any():
        return pd.DataFrame(columns=LATENCY_COLUMNS, index=pd.Index([], name="seconds ago", dtype=float), dtype=float)
    latency_ms = (sent[recent] - created[recent]) * 1000.0
    bucket = np.ceil((sent[recent] - now) / bucket_s) * bucket_s
    order = np.lexsort((latency_ms, bucket))  # by bucket, then by latency within a bucket
    latency_ms, bucket = latency_ms[order], bucket[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, bucket.size])
    return pd.DataFrame(
        {"p50": _sorted_group_quantile(latency_ms, starts, counts, 0.5),
         "p99": _sorted_group_quantile(latency_ms, starts, counts, 0.99)},
        index=pd.Index(bucket[starts], name="seconds ago", dtype=float),
    )


def _sorted_group_quantile(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each group ``values[start:start + count]`` (sorted), interpolated
    linearly with the same arithmetic as pandas' ``groupby(...).quantile(q)``."""
    position = q * (counts - 1)
    below = np.floor(position).astype(np.int64)
    fraction = position - below
    low = values[starts + below]
    high = values[starts + np.minimum(below + 1, counts - 1)]
    return np.where(fraction == 0.0, low, low + (high - low) * fraction)


def short_group_name(group: str) -> str:
    """``orderlab-transactions-lesson05-1a2b3c4d`` → ``transactions``."""
    name = group.removeprefix("orderlab-")
    return name.split("-", 1)[0] if name else group


def lag(samples: Sequence[Sample], now: float, window_s: float = 60.0) -> pd.DataFrame:
    """Consumer lag per group (short names as columns), one row per sample that measured it."""
    recent = [s for s in _in_window(samples, now, window_s) if s.lag]
    if not recent:
        return pd.DataFrame(index=pd.Index([], name="seconds ago", dtype=float), dtype=float)
    rows = [{short_group_name(group): value for group, value in s.lag.items()} for s in recent]
    frame = pd.DataFrame(rows, index=pd.Index([s.at - now for s in recent], name="seconds ago", dtype=float))
    return frame.astype(float)


@dataclass(frozen=True)
class DashboardData:
    """Everything one frame of the live charts shows."""

    rates: pd.DataFrame
    latency: pd.DataFrame
    lag: pd.DataFrame
    window_s: float
    measured_rate: float


def dashboard_data(
    samples: Sequence[Sample], latencies: Iterable[tuple[float, float]], now: float, window_s: float = 60.0
) -> DashboardData:
    return DashboardData(
        rates=rates(samples, now, window_s),
        latency=latency_percentiles(latencies, now, window_s),
        lag=lag(samples, now, window_s),
        window_s=window_s,
        measured_rate=measured_rate(samples),
    )
