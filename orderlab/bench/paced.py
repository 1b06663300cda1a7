"""Paced runs on one Lab: the generator at a set rate, measured over fixed windows.

Each window gives the rate the generator achieved against the one asked for,
and (when asked) the order → e-mail latency of every order created inside
the window, collected after the pipeline has caught up with the window's
last order, so slow e-mails are counted rather than cut off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..lab import Lab
from ..settings import Settings
from .pipeline import disturbances, warm_up
from .stats import percentile, rate_error_pct


@dataclass(frozen=True)
class Step:
    """Run the generator at ``rate`` for ``warmup_s``, then measure for ``window_s``."""

    rate: float
    warmup_s: float
    window_s: float
    latency: bool = False
    dashboard: bool = False


@dataclass(frozen=True)
class RateWindow:
    requested: float
    achieved: float
    seconds: float
    latencies_ms: tuple[float, ...] = ()
    pending: int = 0  # e-mails of the window still not sent when the drain bound ran out

    @property
    def error_pct(self) -> float:
        return rate_error_pct(self.requested, self.achieved)

    def latency(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)


@dataclass(frozen=True)
class PacedResult:
    windows: tuple[RateWindow, ...]
    dashboard: Any = None  # DashboardResult, or a str saying why there is none
    notes: tuple[str, ...] = field(default_factory=tuple)


class LatencyCollector:
    """Keeps every (created_at, sent_at) pair the e-mail role reports, beyond its bounded memory."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab
        self.pairs: list[tuple[float, float]] = []
        self._last_sent = -math.inf

    def poll(self) -> None:
        last = self._last_sent
        fresh = [pair for pair in self._lab.email_latencies() if pair[1] > last]
        if fresh:
            self.pairs.extend(fresh)
            self._last_sent = max(pair[1] for pair in fresh)

    def latencies_ms(self, created_from: float, created_to: float) -> tuple[float, ...]:
        return tuple((sent - created) * 1000.0 for created, sent in self.pairs if created_from <= created < created_to)


def _hold(lab: Lab, seconds: float, collector: LatencyCollector, tick: Callable[[float], None] | None) -> None:
    """Let the lab run for ``seconds``, collecting latencies; raises at once if a role failed."""
    started = time.monotonic()
    end = started + seconds
    while True:
        collector.poll()
        now = time.monotonic()
        if tick is not None:
            tick(min(1.0, (now - started) / seconds) if seconds > 0 else 1.0)
        if now >= end:
            return
        failed = lab.failures()
        if failed:
            raise RuntimeError("; ".join(f"{name} failed: {error}" for name, error in failed.items()))
        time.sleep(min(0.25, max(0.0, end - now)))


def run_paced(settings: Settings, steps: tuple[Step, ...], *, workers: int = 2, drain_timeout_s: float = 60.0,
              warm_up_orders: int = 200,
              dashboard: Callable[[Lab, Callable[[], None]], Any] | None = None,
              progress: Callable[[int, float], None] | None = None) -> PacedResult:
    """Run ``steps`` in order on one Lab; ``progress(step_index, fraction)`` as it goes.

    ``dashboard(lab, hold)`` is called for the step marked ``dashboard``: it
    starts the control room, calls ``hold()`` (which runs the measuring
    window) and returns its own result.
    """
    windows: list[RateWindow] = []
    dashboard_result: Any = None
    notes: list[str] = []
    with Lab(settings, rate=0, workers=workers) as lab:
        warm_up(lab, warm_up_orders)
        collector = LatencyCollector(lab)
        for index, step in enumerate(steps):
            total_s = step.warmup_s + step.window_s or 1.0

            def report(fraction_of_step: float, _index: int = index) -> None:
                if progress is not None:
                    progress(_index, fraction_of_step)

            lab.set_rate(step.rate)
            _hold(lab, step.warmup_s, collector, lambda f, _s=step: report(f * _s.warmup_s / total_s))
            measured: dict[str, float] = {}

            def window(_step: Step = step) -> None:
                before = lab.snapshot(with_lag=False)
                measured["t0"], measured["wall0"], measured["placed0"] = time.monotonic(), time.time(), before.placed
                _hold(lab, _step.window_s, collector, lambda f: report((_step.warmup_s + f * _step.window_s) / total_s))
                after = lab.snapshot(with_lag=False)
                measured["t1"], measured["wall1"], measured["placed1"] = time.monotonic(), time.time(), after.placed

            if step.dashboard and dashboard is not None:
                dashboard_result = dashboard(lab, window)
            else:
                window()
            seconds = measured["t1"] - measured["t0"]
            achieved = (measured["placed1"] - measured["placed0"]) / seconds
            latencies: tuple[float, ...] = ()
            pending = 0
            if step.latency:
                # wait (bounded) until everything placed by the window's end is done
                target = int(measured["placed1"])
                last = lab.wait_until(lambda s: s.declined + s.emails_sent >= target, drain_timeout_s,
                                      poll_s=0.1, progress=lambda _s: collector.poll())
                collector.poll()
                pending = max(0, target - (last.declined + last.emails_sent))
                latencies = collector.latencies_ms(measured["wall0"], measured["wall1"])
                if pending:
                    # not sent within the bound: count them at the bound, a lower limit of their latency
                    waited_ms = (time.time() - measured["wall1"]) * 1000.0
                    latencies += (waited_ms,) * pending
                    notes.append(f"{pending} e-mails of the {step.rate:g}/s window were not sent within {drain_timeout_s:.0f} s")
            windows.append(RateWindow(step.rate, achieved, seconds, latencies, pending))
            if progress is not None:
                progress(index, 1.0)
        lab.set_rate(0)
        notes.extend(disturbances(lab, "paced runs"))
    return PacedResult(tuple(windows), dashboard_result, tuple(notes))
