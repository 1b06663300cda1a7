"""The pipeline's sustained throughput: the whole Lab, the generator unthrottled, a fixed number of orders."""

from __future__ import annotations

import time
from typing import Callable

from ..lab import Lab, LabSnapshot
from ..settings import Settings
from .ceiling import ThroughputResult
from .cpuclock import CpuClock
from .stats import sustained_rate

UNTHROTTLED = 1e9  # orders/s: the token bucket never holds the generator back
WARM_UP_RATE = 500.0


def completed(snapshot: LabSnapshot) -> int:
    """Orders all the way through: settled, e-mailed if confirmed, and seen by analytics."""
    return min(snapshot.declined + snapshot.emails_sent, snapshot.analytics_orders_seen)


def disturbances(lab: Lab, what: str) -> tuple[str, ...]:
    """Rebalances seen in a run: work done twice (at-least-once kept it correct, but slower)."""
    snapshot = lab.snapshot(with_lag=False)
    failed_commits = sum(int(role.get("commit_failures", 0)) for role in snapshot.roles.values())
    notes = []
    if snapshot.replayed or failed_commits:
        notes.append(f"{what}: a consumer group rebalanced mid-run ({failed_commits} commits refused, "
                     f"{snapshot.replayed} orders settled again from the ledger, none charged twice)")
    return tuple(notes)


def warm_up(lab: Lab, count: int, *, rate: float = WARM_UP_RATE, timeout_s: float = 90.0) -> LabSnapshot:
    """Put ``count`` orders through a fresh Lab and wait until all are done; the generator is left at rate 0.

    Every consumer group has then joined and fetched, every connection is
    open: what is measured next is the pipeline running, not it starting
    (a group join can take seconds, longer when a member has to time out).
    """
    deadline = time.monotonic() + timeout_s
    # exactly ``count`` more: Lab.generate also drops the token a paused bucket keeps
    lab.generate(count, rate=rate, timeout=timeout_s)
    placed = lab.snapshot(with_lag=False).placed
    last = lab.wait_until(lambda s: completed(s) >= placed, max(1.0, deadline - time.monotonic()))
    if completed(last) < placed:
        raise RuntimeError(f"the pipeline did not finish {placed} warm-up orders within {timeout_s:.0f} s "
                           f"({completed(last)} done): is the broker overloaded?")
    # A transactions worker that joined late gets its partitions in a second
    # rebalance, which can land after the warm-up orders (about a heartbeat
    # later) and then refuses the others' commits mid-measurement.
    settle_by = min(deadline, time.monotonic() + 15.0)
    while not lab.groups_settled() and time.monotonic() < settle_by:
        time.sleep(0.05)
    return lab.snapshot(with_lag=False)


def run_pipeline(settings: Settings, orders: int, *, workers: int = 2, warm_up_orders: int | None = None,
                 timeout_s: float = 300.0, progress: Callable[[int], None] | None = None) -> ThroughputResult:
    """Place ``orders`` as fast as the generator can and time them to the e-mail.

    The figure is the rate between 10 % and 90 % of the orders completed:
    the generator's burst at the start (it outruns everything downstream)
    and the last partial batches are left out.
    """
    warm = warm_up_orders if warm_up_orders is not None else max(50, min(500, orders // 20))
    lab = Lab(settings, rate=0, workers=workers, limit=warm + orders)
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    with lab:
        base = completed(warm_up(lab, warm))
        total = warm + orders - base
        started, cpu = time.monotonic(), CpuClock()
        lab.set_rate(UNTHROTTLED)

        def record(snapshot: LabSnapshot) -> None:
            done = completed(snapshot) - base
            timeline.append((time.monotonic() - started, done))
            if progress is not None:
                progress(done)

        lab.wait_until(lambda s: completed(s) - base >= total, timeout_s, poll_s=0.05, progress=record)
        spent = cpu.read()
        notes = disturbances(lab, "pipeline run")
    return ThroughputResult(total, timeline[-1][1], timeline[-1][0], sustained_rate(timeline, total), tuple(timeline), notes,
                            spent.process_s, spent.machine_s)
