"""The bench's report: the figures, the targets they are held to, a table for people and a dict for JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .ceiling import ThroughputResult
from .dashboard import DashboardResult
from .paced import RateWindow
from .roles import RoleCost

# name: (comparison, bound) — ratios and latencies measured on the same machine in the same run
TARGETS: dict[str, tuple[str, float]] = {
    "pipeline_vs_ceiling": (">=", 0.6),
    "latency_p99_ms_at_100": ("<=", 50.0),
    "latency_p99_ms_at_1000": ("<=", 250.0),
    "rate_error_pct": ("<=", 2.0),
    "dashboard_hz": (">=", 1.0),
    # the application's CPU per order at most twice what its Kafka work costs alone (the ceiling's)
    "pipeline_cpu_vs_ceiling": ("<=", 2.0),
}


def _round(value: float | None, digits: int = 1) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(value, digits)


def _met(value: float | None, comparison: str, bound: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return value >= bound if comparison == ">=" else value <= bound


@dataclass(frozen=True)
class BenchReport:
    ceiling: ThroughputResult
    pipeline: ThroughputResult
    windows: tuple[RateWindow, ...]
    dashboard: DashboardResult | str | None
    machine: dict[str, Any]
    plan: dict[str, Any]
    elapsed_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    roles: tuple[RoleCost, ...] = ()  # each role alone: where an order's CPU goes

    # -- the headline figures ------------------------------------------------------
    @property
    def pipeline_vs_ceiling(self) -> float:
        if not self.ceiling.orders_per_s or math.isnan(self.ceiling.orders_per_s):
            return math.nan
        return self.pipeline.orders_per_s / self.ceiling.orders_per_s

    @property
    def pipeline_cpu_vs_ceiling(self) -> float:
        """The pipeline process's CPU per order over the ceiling's: what the application adds to its Kafka work."""
        ceiling = self.ceiling.cpu_us_per_order
        return self.pipeline.cpu_us_per_order / ceiling if ceiling and math.isfinite(ceiling) else math.nan

    @property
    def target_rate(self) -> float:
        """The pipeline rate the ratio target asks for, in orders/s."""
        return TARGETS["pipeline_vs_ceiling"][1] * self.ceiling.orders_per_s

    @property
    def cores_at_target(self) -> float:
        """Cores the whole machine would be busy for at :attr:`target_rate`, at the pipeline's CPU per order.

        A lower bound: it assumes every process could use any idle core.
        More than the machine has, and no change to how the work is spread
        over threads or processes reaches the target on it: only doing less
        work per order does.
        """
        return self.pipeline.machine_cpu_us_per_order * self.target_rate / 1e6

    def latency_windows(self) -> dict[str, RateWindow]:
        return {f"{w.requested:g}": w for w in self.windows if w.latencies_ms}

    @property
    def rate_error_pct(self) -> float:
        return max((w.error_pct for w in self.windows), default=math.nan)

    @property
    def dashboard_hz(self) -> float:
        return self.dashboard.hz if isinstance(self.dashboard, DashboardResult) else math.nan

    def target_values(self) -> dict[str, float]:
        latency = self.latency_windows()
        return {
            "pipeline_vs_ceiling": self.pipeline_vs_ceiling,
            "latency_p99_ms_at_100": latency["100"].latency(99) if "100" in latency else math.nan,
            "latency_p99_ms_at_1000": latency["1000"].latency(99) if "1000" in latency else math.nan,
            "rate_error_pct": self.rate_error_pct,
            "dashboard_hz": self.dashboard_hz,
            "pipeline_cpu_vs_ceiling": self.pipeline_cpu_vs_ceiling,
        }

    def targets(self) -> dict[str, dict[str, Any]]:
        values = self.target_values()
        result = {}
        for name, (comparison, bound) in TARGETS.items():
            met = _met(values[name], comparison, bound)
            if name == "dashboard_hz" and isinstance(self.dashboard, DashboardResult):
                met = met and not self.dashboard.backlog_growing
            result[name] = {"value": _round(values[name], 3), "target": f"{comparison} {bound:g}", "met": met}
        return result

    @property
    def all_targets_met(self) -> bool:
        return all(t["met"] for t in self.targets().values())

    # -- output --------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        latency = {
            name: {"p50": _round(w.latency(50)), "p99": _round(w.latency(99)), "samples": len(w.latencies_ms), "pending": w.pending}
            for name, w in self.latency_windows().items()
        }
        dashboard: dict[str, Any] | None
        if isinstance(self.dashboard, DashboardResult):
            d = self.dashboard
            dashboard = {
                "interval_s": d.interval_s, "window_s": _round(d.window_s, 2), "frames": d.frames, "hz": _round(d.hz, 3),
                "frame_ms_p50": _round(d.frame_ms_p50), "frame_ms_p99": _round(d.frame_ms_p99),
                "capacity_hz": _round(d.capacity_hz, 2), "lag_start": d.lag_start, "lag_end": d.lag_end,
                "backlog_growing": d.backlog_growing, "rate": d.rate,
            }
        else:
            dashboard = {"error": self.dashboard} if self.dashboard else None
        return {
            "ceiling_orders_per_s": _round(self.ceiling.orders_per_s),
            "pipeline_orders_per_s": _round(self.pipeline.orders_per_s),
            "pipeline_vs_ceiling": _round(self.pipeline_vs_ceiling, 3),
            "pipeline_cpu_vs_ceiling": _round(self.pipeline_cpu_vs_ceiling, 3),
            "latency_ms": latency,
            "rate_error_pct": _round(self.rate_error_pct, 2),
            "dashboard_hz": _round(self.dashboard_hz, 3),
            "rates": {
                f"{w.requested:g}": {"requested": w.requested, "achieved": _round(w.achieved, 2),
                                     "error_pct": _round(w.error_pct, 2), "seconds": _round(w.seconds, 2)}
                for w in self.windows
            },
            "ceiling": {"orders": self.ceiling.orders, "completed": self.ceiling.completed, "elapsed_s": _round(self.ceiling.elapsed_s, 2)},
            "pipeline": {"orders": self.pipeline.orders, "completed": self.pipeline.completed, "elapsed_s": _round(self.pipeline.elapsed_s, 2)},
            "dashboard": dashboard,
            "cpu_us_per_order": {
                "ceiling": _round(self.ceiling.cpu_us_per_order),
                "pipeline": _round(self.pipeline.cpu_us_per_order),
                "roles_alone": _round(sum(cost.cpu_us_per_order for cost in self.roles)) if self.roles else None,
            },
            "machine_cpu_us_per_order": {
                "ceiling": _round(self.ceiling.machine_cpu_us_per_order),
                "pipeline": _round(self.pipeline.machine_cpu_us_per_order),
                "roles_alone": _round(sum(cost.machine_cpu_us_per_order for cost in self.roles)) if self.roles else None,
            },
            "cores_at_target": {"rate": _round(self.target_rate), "needed": _round(self.cores_at_target, 2),
                                "machine": self.machine.get("cpus")},
            "roles_alone": {
                cost.role: {"orders": cost.orders, "orders_per_s": _round(cost.orders_per_s),
                            "cpu_us_per_order": _round(cost.cpu_us_per_order),
                            "machine_cpu_us_per_order": _round(cost.machine_cpu_us_per_order), "finished": cost.finished}
                for cost in self.roles
            },
            "targets": self.targets(),
            "all_targets_met": self.all_targets_met,
            "machine": self.machine,
            "plan": self.plan,
            "elapsed_s": _round(self.elapsed_s, 1),
            "notes": list(self.notes),
        }


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def format_table(report: BenchReport) -> str:
    """The report as a table for a terminal."""
    targets = report.targets()

    def mark(name: str) -> str:
        return f"{targets[name]['target']:>8}  {'met' if targets[name]['met'] else 'NOT MET'}"

    rows: list[tuple[str, str, str]] = [
        ("ceiling (Kafka only)", _fmt(report.ceiling.orders_per_s, " orders/s"), ""),
        ("pipeline (sustained)", _fmt(report.pipeline.orders_per_s, " orders/s"), ""),
        ("pipeline / ceiling", _fmt(report.pipeline_vs_ceiling, "", 2), mark("pipeline_vs_ceiling")),
        ("CPU per order: ceiling", _fmt(report.ceiling.cpu_us_per_order, " µs"), f"machine {_fmt(report.ceiling.machine_cpu_us_per_order, ' µs')}"),
        ("CPU per order: pipeline", _fmt(report.pipeline.cpu_us_per_order, " µs"), f"machine {_fmt(report.pipeline.machine_cpu_us_per_order, ' µs')}"),
        ("CPU per order: pipeline / ceiling", _fmt(report.pipeline_cpu_vs_ceiling, "", 2), mark("pipeline_cpu_vs_ceiling")),
        (f"cores {_fmt(report.target_rate, ' orders/s')} needs", _fmt(report.cores_at_target, "", 1), f"this machine has {report.machine.get('cpus')}"),
    ]
    for cost in report.roles:
        rows.append((f"  {cost.role} alone", _fmt(cost.orders_per_s, " orders/s"),
                     f"{_fmt(cost.cpu_us_per_order, ' µs')} CPU per order, machine {_fmt(cost.machine_cpu_us_per_order, ' µs')}"))
    for name, window in report.latency_windows().items():
        target = f"latency_p99_ms_at_{name}"
        rows.append((f"latency at {name}/s  p50", _fmt(window.latency(50), " ms", 1), ""))
        rows.append((f"latency at {name}/s  p99", _fmt(window.latency(99), " ms", 1), mark(target) if target in targets else ""))
    for window in report.windows:
        rows.append((f"rate {window.requested:g}/s achieved", _fmt(window.achieved, "/s", 1), f"error {window.error_pct:.2f}%"))
    rows.append(("largest rate error", _fmt(report.rate_error_pct, " %", 2), mark("rate_error_pct")))
    if isinstance(report.dashboard, DashboardResult):
        d = report.dashboard
        rows.append((f"dashboard at {d.rate:g}/s", _fmt(d.hz, " Hz", 2), mark("dashboard_hz")))
        rows.append(("  frame time p50 / p99", f"{_fmt(d.frame_ms_p50, '', 0)} / {_fmt(d.frame_ms_p99, ' ms', 0)}", f"capacity {d.capacity_hz:.1f} Hz"))
        rows.append(("  consumer lag start → end", f"{d.lag_start:,} → {d.lag_end:,}", "growing" if d.backlog_growing else "steady"))
    else:
        rows.append(("dashboard", str(report.dashboard or "not measured"), mark("dashboard_hz")))
    width = max(len(row[0]) for row in rows) + 2
    value_width = max(len(row[1]) for row in rows) + 2
    lines = [f"{label:<{width}}{value:>{value_width}}   {extra}".rstrip() for label, value, extra in rows]
    machine = report.machine
    lines.append("")
    lines.append(f"machine: {machine.get('cpus')} CPUs, {machine.get('memory_gib')} GiB, Python {machine.get('python')}, "
                 f"kafka-python {machine.get('kafka_python')}; load {machine.get('load_before')} → {machine.get('load_after')}")
    lines.extend(f"note: {note}" for note in report.notes)
    lines.append("all targets met" if report.all_targets_met else "some targets not met")
    return "\n".join(lines)
