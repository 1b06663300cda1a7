"""The control room's chart refresh, measured headless while the Lab runs at the top slider rate.

The real :class:`~orderlab.ui.controls.ControlRoom` is built over the
running Lab, its own refresher thread draws the charts at its own interval,
and every frame is timed. No browser: what is measured is the Python side
(sampling the lab, consumer lag, pandas, matplotlib to PNG), which is what
competes with the pipeline for the one process. Test mode plays no part: it
only shortens the lessons' scripted runs (the control room reads it in
``hold`` and ``watch``, its lessons' pauses, which the bench does not call).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .stats import percentile


@dataclass(frozen=True)
class DashboardResult:
    interval_s: float  # the refresher's own interval (what it tries to keep)
    window_s: float
    frames: int
    hz: float  # frames per second the refresher kept during the window (see beat_hz)
    frame_ms_p50: float
    frame_ms_p99: float
    lag_start: int  # consumer lag, all groups, when the window started and when it ended
    lag_end: int
    rate: float  # the generator's rate during the window

    @property
    def capacity_hz(self) -> float:
        """Frames a second the refresher could draw back to back at the median frame time."""
        return 1000.0 / self.frame_ms_p50 if self.frame_ms_p50 > 0 else float("inf")

    @property
    def backlog_growing(self) -> bool:
        """More than one second of orders added to the consumer lag over the window."""
        return self.lag_end - self.lag_start > self.rate * 1.0


def beat_hz(starts: list[float], window_s: float) -> float:
    """Frames per second from the spacing of the frames' starts; a window's edges would cut one frame
    off or not depending on the phase. A refresher keeping its one-second beat scores 1.0."""
    if len(starts) >= 2 and starts[-1] > starts[0]:
        return round((len(starts) - 1) / (starts[-1] - starts[0]), 2)
    return len(starts) / window_s if window_s > 0 else 0.0


def measure_dashboard(lab: Any, hold: Callable[[], None]) -> DashboardResult | str:
    """Run the control room over ``lab`` while ``hold()`` runs; a string says why it could not."""
    try:
        from ..ui import ControlRoom
    except ImportError as exc:  # the ui extras (ipywidgets) are not installed
        return f"no control room to measure: {exc}"
    room = ControlRoom(lab)
    frames: list[tuple[float, float]] = []  # (started, duration) per frame
    draw = room.refresher.work

    def timed_frame() -> None:
        started = time.monotonic()
        draw()
        frames.append((started, time.monotonic() - started))

    room.refresher.work = timed_frame
    rate = lab.rate
    lag_start = sum(lab.snapshot(with_lag=True).lag.values())
    room.refresher.start()
    try:
        window_started = time.monotonic()
        hold()
        window_s = time.monotonic() - window_started
    finally:
        room.refresher.stop()
        room.dashboard.close()  # its chart process; the Lab is the caller's to stop
    lag_end = sum(lab.snapshot(with_lag=True).lag.values())
    inside = [frame for frame in frames if window_started <= frame[0] < window_started + window_s]
    durations = [duration * 1000.0 for _, duration in inside]
    return DashboardResult(
        interval_s=room.refresher.interval_s,
        window_s=window_s,
        frames=len(inside),
        hz=beat_hz([started for started, _ in inside], window_s),
        frame_ms_p50=percentile(durations, 50),
        frame_ms_p99=percentile(durations, 99),
        lag_start=lag_start,
        lag_end=lag_end,
        rate=rate,
    )
