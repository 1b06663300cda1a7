"""The bench's plan and its run: ceiling, pipeline, each role alone, paced windows (with the dashboard), one report."""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Iterator

from kafka.errors import KafkaError

from ..clients import check_broker
from ..limits import MAX_RATE
from ..progress import ProgressBar
from ..settings import Settings, new_run_suffix
from ..topics import delete_topics
from .ceiling import run_ceiling
from .dashboard import measure_dashboard
from .paced import Step, run_paced
from .pipeline import run_pipeline
from .report import BenchReport
from .roles import measure_roles

log = logging.getLogger(__name__)

TOP_SLIDER_RATE = MAX_RATE  # the control room's rate slider ends here


@dataclass(frozen=True)
class BenchPlan:
    orders: int
    workers: int
    steps: tuple[Step, ...]
    quick: bool
    drain_timeout_s: float

    @classmethod
    def standard(cls) -> "BenchPlan":
        return cls(
            orders=20_000,
            workers=2,
            steps=(
                Step(10, warmup_s=3, window_s=20),
                Step(100, warmup_s=3, window_s=20, latency=True),
                Step(1000, warmup_s=3, window_s=20, latency=True),
                Step(TOP_SLIDER_RATE, warmup_s=3, window_s=15, dashboard=True),
            ),
            quick=False,
            drain_timeout_s=60.0,
        )

    @classmethod
    def tiny(cls) -> "BenchPlan":
        """A tiny load and short windows: for tests; the figures mean little."""
        return cls(
            orders=300,
            workers=2,
            steps=(
                Step(10, warmup_s=0.5, window_s=2),
                Step(100, warmup_s=0.5, window_s=2, latency=True),
                Step(1000, warmup_s=0.5, window_s=2, latency=True),
                Step(TOP_SLIDER_RATE, warmup_s=0.5, window_s=2.5, dashboard=True),
            ),
            quick=True,
            drain_timeout_s=30.0,
        )

    def with_orders(self, orders: int) -> "BenchPlan":
        return replace(self, orders=orders)

    def with_workers(self, workers: int) -> "BenchPlan":
        return replace(self, workers=workers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders, "workers": self.workers, "quick": self.quick,
            "windows": [{"rate": s.rate, "warmup_s": s.warmup_s, "window_s": s.window_s} for s in self.steps],
        }


def load_average() -> str:
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info() -> dict[str, Any]:
    """What the figures came from: they only compare within one machine and one run."""
    memory_gib: float | None = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        kafka_python = metadata.version("kafka-python")
    except metadata.PackageNotFoundError:
        kafka_python = "unknown"
    return {
        "cpus": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "kafka_python": kafka_python,
        "platform": platform.platform(terse=True),
        "implementation": sys.implementation.name,
    }


class _PhasedBar:
    """One progress bar over the whole run; each phase owns a share proportional to its expected time."""

    def __init__(self, weights: dict[str, float], show: bool) -> None:
        self._bar = ProgressBar(1000, "bench") if show else None
        total = sum(weights.values())
        self._offsets: dict[str, tuple[float, float]] = {}
        position = 0.0
        for name, weight in weights.items():
            self._offsets[name] = (position, weight / total)
            position += weight / total

    def update(self, phase: str, fraction: float) -> None:
        if self._bar is None:
            return
        start, share = self._offsets[phase]
        self._bar.update(int(1000 * (start + share * min(1.0, max(0.0, fraction)))), phase)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(1000, "done")
            self._bar.close()


@contextmanager
def own_topics(settings: Settings, prefix: str) -> Iterator[Settings]:
    """Settings with topics of a run's own, deleted when the phase ends.

    A broker that keeps every run's topics slows down for everyone: each
    metadata answer lists them all and the broker tends their partitions.
    """
    own = settings.with_(topic_suffix=new_run_suffix(prefix))
    try:
        yield own
    finally:
        try:
            delete_topics(own)
        except (KafkaError, OSError) as exc:  # the figures stand; only the clean-up failed
            log.warning("bench: could not delete the topics of %s: %s", own.topic_suffix, exc)


def run_bench(settings: Settings, plan: BenchPlan, *, show_progress: bool = False) -> BenchReport:
    """Every measurement, in one run, each on topics of its own."""
    check_broker(settings)
    started = time.monotonic()
    machine = {**machine_info(), "load_before": load_average(), "bootstrap_servers": settings.bootstrap_servers}
    step_names = [f"{step.rate:g}/s" for step in plan.steps]
    expected_rate = 3000.0  # orders/s, only to share out the progress bar
    weights = {"ceiling": plan.orders / (4 * expected_rate) + 2, "pipeline": plan.orders / expected_rate + 2,
               "roles": plan.orders / expected_rate + 8}
    weights.update({name: step.warmup_s + step.window_s + (3 if step.latency else 0) for name, step in zip(step_names, plan.steps)})
    bar = _PhasedBar(weights, show_progress)
    try:
        # A ledger of the run's own too (a temporary file), unless one was set: the
        # bench's orders are made up and their topics deleted, so their payments
        # do not belong in the user's ledger, which would only grow and slow down.
        base = settings.with_(db_url=settings.db_url or "sqlite://")
        with own_topics(base, "bench-ceiling") as ceiling_settings:
            ceiling = run_ceiling(
                ceiling_settings, plan.orders, relays=plan.workers,
                progress=lambda done: bar.update("ceiling", done / plan.orders),
            )
        with own_topics(base, "bench-pipeline") as pipeline_settings:
            pipeline = run_pipeline(
                pipeline_settings, plan.orders, workers=plan.workers,
                progress=lambda done: bar.update("pipeline", done / plan.orders),
            )
        with own_topics(base, "bench-roles") as roles_settings:
            # the first batch (up to 500 records) is not timed: at least 2000 orders leave something to time
            roles = measure_roles(roles_settings, max(plan.orders, 2000), progress=lambda fraction: bar.update("roles", fraction))
        with own_topics(base, "bench-paced") as paced_settings:
            paced = run_paced(
                paced_settings, plan.steps, workers=plan.workers,
                drain_timeout_s=plan.drain_timeout_s, dashboard=measure_dashboard,
                progress=lambda index, fraction: bar.update(step_names[index], fraction),
            )
    finally:
        bar.close()
    machine["load_after"] = load_average()
    notes = [*pipeline.notes, *paced.notes]
    notes.extend(f"the {cost.role} role alone finished only {cost.orders} orders before its time ran out" for cost in roles if not cost.finished)
    for name, result in (("ceiling", ceiling), ("pipeline", pipeline)):
        if not result.finished:
            notes.append(f"the {name} run finished {result.completed} of {result.orders} orders before its time ran out")
    return BenchReport(
        ceiling=ceiling,
        pipeline=pipeline,
        windows=paced.windows,
        dashboard=paced.dashboard,
        machine=machine,
        plan=plan.as_dict(),
        elapsed_s=time.monotonic() - started,
        notes=tuple(notes),
        roles=roles,
    )
