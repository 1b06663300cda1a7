"""The classroom run's report: each step's figures, the targets they are held to, a table and a dict for JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..ceiling import ThroughputResult
from ..report import _fmt, _met, _round
from ..stats import percentile
from .procs import ProcessUse

# name: (comparison, bound); reported against, never asserted
TARGETS: dict[str, tuple[str, float]] = {
    "classroom_vs_bare": (">=", 0.8),
    "p99_ms_at_held_steps": ("<=", 1000.0),  # the worst held step
    "chart_hz_at_held_steps": (">=", 1.0),  # the worst held step, as frames arrive in the browser
}
PROCESS_NAMES = ("kernel", "jupyter_server", "broker", "browser")


@dataclass(frozen=True)
class StepResult:
    """One position of the rate slider, measured over its last ``window_s`` seconds."""

    rate: int
    window_s: float
    placed_per_s: float
    settled_per_s: float
    confirmed_per_s: float
    emailed_per_s: float
    lag_growth_per_s: dict[str, float]
    latencies_ms: tuple[float, ...]
    chart_frames: int  # image updates that arrived in the page
    chart_hz: float
    kernel_frames_hz: float  # frames the control room drew in the kernel, for comparison
    processes: dict[str, ProcessUse]
    machine_cpu_s: float | None  # every process of the machine, over the window
    panel_says: str  # the control room's own "falls behind" sentence at the window's end
    screenshot: str
    shortfalls: tuple[str, ...]  # why the step was not held; empty when it was

    @property
    def held(self) -> bool:
        return not self.shortfalls

    def latency(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate, "held": self.held, "shortfalls": list(self.shortfalls), "window_s": _round(self.window_s, 1),
            "placed_per_s": _round(self.placed_per_s), "settled_per_s": _round(self.settled_per_s),
            "confirmed_per_s": _round(self.confirmed_per_s), "emailed_per_s": _round(self.emailed_per_s),
            "lag_growth_per_s": {group: _round(per_s) for group, per_s in sorted(self.lag_growth_per_s.items())},
            "p50_ms": _round(self.latency(50)), "p99_ms": _round(self.latency(99)), "latency_samples": len(self.latencies_ms),
            "chart_hz": _round(self.chart_hz, 2), "chart_frames": self.chart_frames, "kernel_frames_hz": _round(self.kernel_frames_hz, 2),
            "rss_mb": {name: use.rss_mb for name, use in self.processes.items()},
            "cpu_s": {name: use.cpu_s for name, use in self.processes.items()},
            "browser_processes": self.processes["browser"].processes if "browser" in self.processes else 0,
            "machine_cpu_s": _round(self.machine_cpu_s, 2),
            "panel_says": self.panel_says, "screenshot": self.screenshot,
        }


@dataclass(frozen=True)
class ClassroomReport:
    bare: ThroughputResult
    slider_top: int
    steps: tuple[StepResult, ...]
    machine: dict[str, Any]
    plan: dict[str, Any]
    elapsed_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    lesson_run: str = ""  # the lesson's topic suffix (its topics, groups and ledger are removed at the end)
    saved_to: str | None = None

    def saved(self, path: str) -> "ClassroomReport":
        return replace(self, saved_to=path)

    @property
    def held_per_s(self) -> int:
        """The highest step held (0 when none was)."""
        return max((step.rate for step in self.steps if step.held), default=0)

    @property
    def classroom_vs_bare(self) -> float:
        """``held_per_s`` ÷ the most a class could ask: the bare rate, or the slider's top when that is lower."""
        reachable = min(self.bare.orders_per_s, self.slider_top)
        if not math.isfinite(reachable) or reachable <= 0:
            return math.nan
        return self.held_per_s / reachable

    def target_values(self) -> dict[str, float]:
        held = [step for step in self.steps if step.held]
        return {
            "classroom_vs_bare": self.classroom_vs_bare,
            "p99_ms_at_held_steps": max((step.latency(99) for step in held), default=math.nan),
            "chart_hz_at_held_steps": min((step.chart_hz for step in held), default=math.nan),
        }

    def targets(self) -> dict[str, dict[str, Any]]:
        values = self.target_values()
        return {name: {"value": _round(values[name], 3), "target": f"{comparison} {bound:g}", "met": _met(values[name], comparison, bound)}
                for name, (comparison, bound) in TARGETS.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "bare_pipeline_per_s": _round(self.bare.orders_per_s),
            "slider_top": self.slider_top,
            "held_per_s": self.held_per_s,
            "classroom_vs_bare": _round(self.classroom_vs_bare, 3),
            "steps": [step.as_dict() for step in self.steps],
            "targets": self.targets(),
            "all_targets_met": all(target["met"] for target in self.targets().values()),
            "bare_pipeline": {"orders": self.bare.orders, "completed": self.bare.completed, "elapsed_s": _round(self.bare.elapsed_s, 2)},
            "machine": self.machine,
            "plan": self.plan,
            "elapsed_s": _round(self.elapsed_s, 1),
            "notes": list(self.notes),
            "lesson_run": self.lesson_run,
            "saved_to": self.saved_to,
        }


def _per_process(values: dict[str, Any], digits: int) -> str:
    return " / ".join(_fmt(values.get(name), "", digits) for name in PROCESS_NAMES)


def format_table(report: ClassroomReport) -> str:
    """One row per step, then the headline figures and the targets."""
    header = ("rate", "placed", "settled", "confirmed", "e-mailed", "worst lag growth", "p50 ms", "p99 ms", "chart Hz",
              "CPU s kernel/server/broker/browser", "RSS MB kernel/server/broker/browser", "held")
    rows = [header]
    for step in report.steps:
        figures = step.as_dict()
        worst = max(step.lag_growth_per_s.items(), key=lambda item: item[1], default=None)
        rows.append((
            f"{step.rate:,}/s", _fmt(step.placed_per_s), _fmt(step.settled_per_s), _fmt(step.confirmed_per_s),
            _fmt(step.emailed_per_s), f"{worst[0]} {worst[1]:+,.0f}/s" if worst else "n/a",
            _fmt(step.latency(50), "", 0), _fmt(step.latency(99), "", 0), _fmt(step.chart_hz, "", 2),
            _per_process(figures["cpu_s"], 1), _per_process(figures["rss_mb"], 0), "yes" if step.held else "NO",
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) if column else cell.ljust(width) for column, (cell, width) in enumerate(zip(row, widths)))
             for row in rows]
    for step in report.steps:
        if step.shortfalls:
            lines.append(f"{step.rate:,}/s not held: {'; '.join(step.shortfalls)}")
    targets = report.targets()
    lines += [
        "",
        f"bare pipeline (orderlab bench's pipeline run): {_fmt(report.bare.orders_per_s, ' orders/s')}; slider top {report.slider_top:,}/s",
        f"held in the classroom: {report.held_per_s:,} orders/s",
    ]
    for name, target in targets.items():
        lines.append(f"{name}: {_fmt(target['value'], '', 2)}   {target['target']}  {'met' if target['met'] else 'NOT MET'}")
    machine = report.machine
    lines.append(f"machine: {machine.get('cpus')} CPUs, {machine.get('memory_gib')} GiB, Python {machine.get('python')}; "
                 f"load {machine.get('load_before')} → {machine.get('load_after')}")
    lines.extend(f"note: {note}" for note in report.notes)
    if report.steps:
        lines.append(f"screenshots: {report.steps[0].screenshot.rsplit('/', 1)[0]}/")
    if report.saved_to:
        lines.append(f"saved for the control room: {report.saved_to}")
    return "\n".join(lines)
