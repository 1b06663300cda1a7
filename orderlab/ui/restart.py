"""The chart of a broker restart (:meth:`orderlab.restart.RestartWatch.frame`): lag, and the orders waiting.

Top: each consumer group's lag, with nothing drawn while the broker was
away (there was no lag to read); bottom: the orders placed but not yet
acknowledged, which is where the work piles up while the broker is away.
The time the broker was away is shaded in both.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd
from matplotlib.figure import Figure

_COLOURS = {"transactions": "#1f77b4", "email": "#9467bd", "analytics": "#ff7f0e"}


def restart_figure(frame: pd.DataFrame, marks: Mapping[str, float], size: tuple[float, float] = (9.0, 5.0)) -> Figure:
    """Lag per group and the orders waiting in the producer, seconds since the broker was told to stop."""
    figure = Figure(figsize=size, layout="constrained")
    lag_axes, waiting_axes = figure.subplots(2, 1, sharex=True)
    zero = marks.get("stopping")
    if frame.empty or zero is None:
        lag_axes.text(0.5, 0.5, "no samples yet", transform=lag_axes.transAxes, ha="center", va="center", color="grey")
        return figure
    away_from = 0.0
    away_to = marks["answers"] - zero if "answers" in marks else float(frame.index.max())
    for axes in (lag_axes, waiting_axes):
        axes.axvspan(away_from, away_to, color="#d62728", alpha=0.12, label="broker away")
        axes.grid(True, alpha=0.3)
    for column in frame.columns:
        if column.startswith("lag "):
            role = column.removeprefix("lag ")
            values = frame[column].astype("float64")  # <NA> becomes NaN: a gap in the line
            lag_axes.plot(frame.index, values, label=role, color=_COLOURS.get(role), marker=".", markersize=3)
    lag_axes.set_ylabel("lag (records)")
    lag_axes.set_title("consumer lag: none to read while the broker is away", fontsize=10)
    lag_axes.legend(fontsize=8, loc="upper left")
    waiting_axes.plot(frame.index, frame["waiting in producer"], color="#2ca02c", marker=".", markersize=3,
                      label="orders waiting in the producer")
    waiting_axes.set_ylabel("orders")
    waiting_axes.set_xlabel("seconds since the broker was told to stop")
    waiting_axes.legend(fontsize=8, loc="upper left")
    return figure
