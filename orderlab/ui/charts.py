"""Matplotlib charts rendered off-screen to PNG bytes.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas,
never with ``pyplot``: pyplot keeps global state and belongs to the main
thread, while the live charts are drawn by a background thread and handed
to an ``ipywidgets.Image``.
"""

from __future__ import annotations

import io
from typing import Sequence

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .chartdata import DashboardData

COLOURS = {"orders in": "#1f77b4", "confirmed": "#2ca02c", "revenue": "#9467bd", "p50": "#ff7f0e", "p99": "#d62728"}


def to_png(figure: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (Agg canvas; safe in any thread)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_image(figure: Figure, dpi: int = 80):
    """The figure as an ``IPython.display.Image`` (what a lesson cell shows)."""
    from IPython.display import Image

    return Image(data=to_png(figure, dpi=dpi), format="png")


def _empty_note(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="grey")


def _plot_lines(axes, frame: pd.DataFrame, columns: Sequence[str], window_s: float, empty: str) -> None:
    if frame.empty:
        _empty_note(axes, empty)
    for column in columns:
        if column in frame:
            axes.plot(frame.index, frame[column], label=column, color=COLOURS.get(column), linewidth=1.6, marker=".", markersize=3)
    axes.set_xlim(-window_s, 0)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    if len(axes.get_lines()) > 1:
        axes.legend(loc="upper left", fontsize=8)


def dashboard_figure(data: DashboardData, *, size: tuple[float, float] = (10.0, 6.0)) -> Figure:
    """Four panels: orders in vs confirmed per second, revenue per second,
    order → e-mail latency p50/p99, consumer lag per group."""
    figure = Figure(figsize=size)
    # fixed margins: the constrained layout engine would double the drawing time
    figure.subplots_adjust(left=0.07, right=0.98, top=0.94, bottom=0.09, hspace=0.28, wspace=0.16)
    (orders, revenue), (latency, lag) = figure.subplots(2, 2, sharex=True)

    _plot_lines(orders, data.rates, ["orders in", "confirmed"], data.window_s, "waiting for orders")
    orders.set_title(f"orders per second (measured {data.measured_rate:,.0f}/s)", fontsize=10)

    _plot_lines(revenue, data.rates, ["revenue"], data.window_s, "waiting for orders")
    revenue.set_title("revenue per second (EUR)", fontsize=10)

    _plot_lines(latency, data.latency, ["p50", "p99"], data.window_s, "no e-mails yet")
    latency.set_title("order → e-mail latency (ms)", fontsize=10)

    _plot_lines(lag, data.lag, list(data.lag.columns), data.window_s, "no lag measured yet")
    lag.set_title("consumer lag (records behind)", fontsize=10)

    for axes in (latency, lag):
        axes.set_xlabel("seconds ago")
    return figure


def dashboard_png(data: DashboardData, *, size: tuple[float, float] = (10.0, 6.0), dpi: int = 80) -> bytes:
    return to_png(dashboard_figure(data, size=size), dpi=dpi)


def analytics_figure(
    orders_per_s: pd.Series,
    revenue_per_s: pd.Series,
    basket_sizes: pd.Series,
    top: pd.DataFrame,
    *,
    size: tuple[float, float] = (10.0, 6.0),
) -> Figure:
    """The analytics lesson's four charts: orders/s, revenue/s (rolling means
    over the raw per-second bars), the basket-size histogram and the best sellers."""
    figure = Figure(figsize=size, layout="constrained")  # drawn once: the nicer layout is affordable
    (rate_ax, revenue_ax), (basket_ax, top_ax) = figure.subplots(2, 2)

    for axes, series, title, colour in (
        (rate_ax, orders_per_s, "orders per second", COLOURS["orders in"]),
        (revenue_ax, revenue_per_s, "revenue per second (EUR)", COLOURS["revenue"]),
    ):
        axes.bar(series.index, series.values, width=0.9, color=colour, alpha=0.35, label="per second")
        axes.plot(series.index, series.rolling(5, min_periods=1).mean().values, color=colour, linewidth=2, label="5 s rolling mean")
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("seconds ago")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)

    if basket_sizes.empty:
        _empty_note(basket_ax, "no orders yet")
    else:
        top_size = int(basket_sizes.max())
        basket_ax.hist(basket_sizes, bins=range(1, top_size + 2), align="left", rwidth=0.8, color="#8c564b")
    basket_ax.set_title("items per order", fontsize=10)
    basket_ax.set_xlabel("items")
    basket_ax.set_ylabel("orders")

    if top.empty:
        _empty_note(top_ax, "no items yet")
    else:
        top_ax.barh(top["name"][::-1], top["units"][::-1], color="#17becf")
    top_ax.set_title("best sellers (units)", fontsize=10)
    return figure
