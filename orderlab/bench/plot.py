"""The bench's figure for the README: throughput against the ceiling, and latency percentiles per rate."""

from __future__ import annotations

import math
from pathlib import Path

from .report import TARGETS, BenchReport


def bench_figure(report: BenchReport):
    """Four small panels: completions over time, throughput bars, CPU per order, latency p50/p99 per rate."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 3.6))
    figure.subplots_adjust(left=0.06, right=0.99, top=0.84, bottom=0.15, wspace=0.3)
    timeline_ax, throughput_ax, cpu_ax, latency_ax = figure.subplots(1, 4)

    for label, result, colour in (("ceiling (Kafka only)", report.ceiling, "#7f7f7f"), ("pipeline", report.pipeline, "#1f77b4")):
        times = [t for t, _ in result.timeline]
        done = [d for _, d in result.timeline]
        timeline_ax.plot(times, done, label=label, color=colour, linewidth=1.8)
    timeline_ax.set_title(f"{report.pipeline.orders:,} orders, all at once", fontsize=10)
    timeline_ax.set_xlabel("seconds")
    timeline_ax.set_ylabel("orders done")
    timeline_ax.grid(True, alpha=0.3)
    timeline_ax.legend(fontsize=8, loc="lower right")

    names = ["ceiling", "pipeline"]
    values = [report.ceiling.orders_per_s, report.pipeline.orders_per_s]
    throughput_ax.bar(names, [0 if math.isnan(v) else v for v in values], color=["#7f7f7f", "#1f77b4"])
    bound = TARGETS["pipeline_vs_ceiling"][1]
    if math.isfinite(report.ceiling.orders_per_s):
        throughput_ax.axhline(bound * report.ceiling.orders_per_s, color="#d62728", linestyle="--", linewidth=1,
                              label=f"target: {bound:g} × ceiling")
        throughput_ax.legend(fontsize=8)
    throughput_ax.set_title(f"sustained orders/s\n(pipeline / ceiling = {report.pipeline_vs_ceiling:.2f})", fontsize=10)
    throughput_ax.grid(True, axis="y", alpha=0.3)

    _cpu_panel(cpu_ax, report)

    windows = report.latency_windows()
    rates = list(windows)
    positions = range(len(rates))
    p50 = [windows[r].latency(50) for r in rates]
    p99 = [windows[r].latency(99) for r in rates]
    latency_ax.bar([p - 0.2 for p in positions], p50, width=0.4, label="p50", color="#ff7f0e")
    latency_ax.bar([p + 0.2 for p in positions], p99, width=0.4, label="p99", color="#d62728")
    for position, rate in zip(positions, rates):
        target = TARGETS.get(f"latency_p99_ms_at_{rate}")
        if target is not None:
            latency_ax.hlines(target[1], position - 0.45, position + 0.45, colors="black", linestyles="--", linewidth=1)
    latency_ax.set_xticks(list(positions), [f"{r}/s" for r in rates])
    latency_ax.set_yscale("log")
    latency_ax.set_title("order → e-mail latency (ms)\n(dashes: p99 targets)", fontsize=10)
    latency_ax.grid(True, axis="y", alpha=0.3)
    latency_ax.legend(fontsize=8)
    figure.suptitle(
        f"orderlab bench: {report.machine.get('cpus')} CPUs, Python {report.machine.get('python')}, "
        f"kafka-python {report.machine.get('kafka_python')}, load {report.machine.get('load_before', '?')}", fontsize=10,
    )
    return figure


def _cpu_panel(ax, report: BenchReport) -> None:
    """CPU per order: the ceiling, the pipeline, and the roles alone stacked (what one core must pay per order).

    A hatched outline over each bar shows the whole machine's CPU per order
    (the broker, the SMTP relay and the catcher on top).
    """
    def finite(value: float) -> float:
        return value if math.isfinite(value) else 0.0

    ax.bar(["ceiling", "pipeline"], [finite(report.ceiling.cpu_us_per_order), finite(report.pipeline.cpu_us_per_order)],
           color=["#7f7f7f", "#1f77b4"])
    names = ["ceiling", "pipeline", *(["roles alone"] if report.roles else [])]
    machine = [report.ceiling.machine_cpu_us_per_order, report.pipeline.machine_cpu_us_per_order,
               *([sum(cost.machine_cpu_us_per_order for cost in report.roles)] if report.roles else [])]
    measured = [(name, value) for name, value in zip(names, machine) if math.isfinite(value)]  # not on every platform
    if measured:
        ax.bar([name for name, _ in measured], [value for _, value in measured],
               fill=False, edgecolor="#333333", hatch="//", label="whole machine")
    bottom = 0.0
    for cost, colour in zip(report.roles, ("#aec7e8", "#98df8a", "#ffbb78", "#c5b0d5")):
        ax.bar(["roles alone"], [finite(cost.cpu_us_per_order)], bottom=bottom, color=colour, label=cost.role)
        bottom += finite(cost.cpu_us_per_order)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title("CPU per order (µs): this process, hatched whole machine\n(roles alone: each role by itself, stacked)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)


def save_plot(report: BenchReport, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = bench_figure(report)
    FigureCanvasAgg(figure)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=100)
    return target
