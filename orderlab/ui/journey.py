"""The timeline of one order's journey (:class:`~orderlab.trace.Journey`) as a chart.

One lane per place the order left a trace (a topic, the ledger, the SMTP
catcher), a dot per step at its time after the order was placed, and the
hops placed → paid → e-mailed marked along the top. Drawn with a
:class:`~matplotlib.figure.Figure` and no pyplot, like every chart here.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

_LANE_ORDER = ("order source", "order_details", "ledger: payments", "order_confirmed", "order_declined", "SMTP catcher", "ledger: emails")
_HOP_COLOURS = {"placed": "#1f77b4", "paid": "#2ca02c", "e-mailed": "#9467bd"}


def _lanes(journey: Any) -> list[str]:
    seen = list(dict.fromkeys(step.where for step in journey.steps))
    return sorted(seen, key=lambda where: (_LANE_ORDER.index(where) if where in _LANE_ORDER else len(_LANE_ORDER), where))


def journey_figure(journey: Any, size: tuple[float, float] = (9.0, 3.2)) -> Figure:
    """The journey's steps on a time axis (ms after the order was placed), one lane per place."""
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    title = f"order {journey.order_id}"
    if journey.placed_at is None or not journey.steps:
        axes.text(0.5, 0.5, "nothing found for this order", transform=axes.transAxes, ha="center", va="center", color="grey")
        axes.set_title(title, fontsize=10)
        axes.set_axis_off()
        return figure
    lanes = _lanes(journey)
    rows = {where: len(lanes) - 1 - n for n, where in enumerate(lanes)}  # the first lane on top
    for step in journey.steps:
        x = (step.at - journey.placed_at) * 1000.0
        y = rows[step.where]
        axes.plot([x], [y], marker="o", color="#d62728" if step.step == "dead-lettered" else "#333333")
        label = step.step if step.offset is None else f"{step.step} (p{step.partition} @ {step.offset})"
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    top = len(lanes) - 0.4
    for hop, at in (("placed", journey.placed_at), ("paid", journey.paid_at), ("e-mailed", journey.emailed_at)):
        if at is None:
            continue
        x = (at - journey.placed_at) * 1000.0
        axes.axvline(x, color=_HOP_COLOURS[hop], linestyle="--", linewidth=1, alpha=0.7)
        axes.text(x, top, f" {hop}\n {x:.0f} ms", color=_HOP_COLOURS[hop], fontsize=8, va="top")
    axes.set_yticks(list(rows.values()), list(rows))
    axes.set_ylim(-0.6, len(lanes) - 0.2)
    axes.set_xlabel("ms after the order was placed")
    axes.grid(True, axis="x", alpha=0.3)
    axes.set_title(title, fontsize=10)
    right = max((step.at - journey.placed_at) * 1000.0 for step in journey.steps)
    axes.set_xlim(min(0.0, right) - max(1.0, abs(right)) * 0.03, max(1.0, right) * 1.25)
    return figure
