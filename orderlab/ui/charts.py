"""Matplotlib charts rendered off-screen to PNG bytes.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas,
never with ``pyplot``: pyplot keeps global state and belongs to the main
thread, while the live charts are drawn by a background thread and handed
to an ``ipywidgets.Image``.
"""

from __future__ import annotations

import io
import threading
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image as PilImage

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


def _empty_note(axes: Axes, text: str) -> Text:
    return axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="grey")


class _Panel:
    """One axes of the dashboard: its lines (made on first use, then kept), legend and empty note."""

    def __init__(self, axes: Axes, title: str, empty: str, columns: Sequence[str] = ()) -> None:
        self.axes = axes
        self.title = axes.set_title(title, fontsize=10)
        # the y label is empty; placing it automatically would measure the tick labels again each frame
        axes.yaxis.set_label_coords(0.0, 0.5)
        axes.grid(True, alpha=0.3)
        self.note = _empty_note(axes, empty)
        self.lines: dict[str, Line2D] = {}
        self.legend_labels: tuple[str, ...] = ()
        for column in columns:
            self._line(column)

    def _line(self, column: str) -> Line2D:
        if column not in self.lines:
            (self.lines[column],) = self.axes.plot(
                [], [], label=column, color=COLOURS.get(column), linewidth=1.6, marker=".", markersize=3
            )
        return self.lines[column]

    def show(self, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        """Plot ``columns`` of ``frame`` (those it has); y from 0 to a little above the highest value."""
        self.note.set_visible(frame.empty)
        shown = [column for column in columns if column in frame]
        x = frame.index.to_numpy(dtype=float)
        top = 0.0
        for column in shown:
            y = frame[column].to_numpy(dtype=float)
            self._line(column).set_data(x, y)
            if np.isfinite(y).any():
                top = max(top, float(np.nanmax(y)))
        for column, line in self.lines.items():
            line.set_visible(column in shown)
        self.axes.set_ylim(0, top * 1.05 if top > 0 else 1.0)
        if tuple(shown) != self.legend_labels:
            self.legend_labels = tuple(shown)
            if self.axes.legend_ is not None:
                self.axes.legend_.remove()
            if len(shown) > 1:
                # opaque, so that a frame can paste the legend's pixels over the lines (DashboardChart)
                self.axes.legend([self.lines[c] for c in shown], shown, loc="upper left", fontsize=8, framealpha=1.0)

    def changing(self) -> list[Artist]:
        """What a new frame may change, in drawing order: the y axis (ticks, grid, labels),
        the lines, the spines (over the lines) and the note."""
        return [self.axes.yaxis, *self.lines.values(), *self.axes.spines.values(), self.note]


class DashboardChart:
    """The control room's four panels, built once and redrawn with each frame's data.

    The live chart draws a frame a second inside the process that also runs
    the pipeline, and Agg text is expensive (every glyph is rendered in
    Python). So the figure is made once, the parts that do not change (axes
    backgrounds, x axes, titles, legends) are drawn once into a background
    image, and a frame restores that image, draws only what changes over it
    (:meth:`_Panel.changing` and the orders title) and pastes the legends'
    pixels back on top.
    """

    def __init__(self, size: tuple[float, float] = (10.0, 6.0), dpi: int = 80) -> None:
        self.figure = Figure(figsize=size, dpi=dpi)
        self._canvas = FigureCanvasAgg(self.figure)
        self._lock = threading.Lock()  # one frame at a time: the artists are shared
        self._background: Any = None  # the unchanging pixels (Agg regions), drawn for _background_key
        self._legends: list[Any] = []
        self._background_key: tuple[Any, ...] = ()
        # fixed margins: the constrained layout engine would double the drawing time
        self.figure.subplots_adjust(left=0.07, right=0.98, top=0.94, bottom=0.09, hspace=0.28, wspace=0.16)
        (orders, revenue), (latency, lag) = self.figure.subplots(2, 2, sharex=True)
        self.orders = _Panel(orders, "orders per second", "waiting for orders", ["orders in", "confirmed"])
        self.revenue = _Panel(revenue, "revenue per second (EUR)", "waiting for orders", ["revenue"])
        self.latency = _Panel(latency, "order → e-mail latency (ms)", "no e-mails yet", ["p50", "p99"])
        self.lag = _Panel(lag, "consumer lag (records behind)", "no lag measured yet")
        for axes in (latency, lag):
            axes.set_xlabel("seconds ago")

    def update(self, data: DashboardData) -> Figure:
        """Put ``data`` into the figure (not drawn yet)."""
        self.orders.title.set_text(f"orders per second (measured {data.measured_rate:,.0f}/s)")
        self.orders.show(data.rates, ["orders in", "confirmed"])
        self.revenue.show(data.rates, ["revenue"])
        self.latency.show(data.latency, ["p50", "p99"])
        self.lag.show(data.lag, list(data.lag.columns))
        self.orders.axes.set_xlim(-data.window_s, 0)  # the x axis is shared
        return self.figure

    @property
    def _panels(self) -> tuple[_Panel, ...]:
        return self.orders, self.revenue, self.latency, self.lag

    def _changing(self) -> list[Artist]:
        return [artist for panel in self._panels for artist in panel.changing()] + [self.orders.title]

    def _draw_background(self) -> None:
        """Draw the figure without what changes between frames; keep the pixels, and the legends' boxes apart."""
        changing = self._changing()
        shown = [artist.get_visible() for artist in changing]
        for artist in changing:
            artist.set_visible(False)
        try:
            self._canvas.draw()
        finally:
            for artist, visible in zip(changing, shown):
                artist.set_visible(visible)
        self._background = self._canvas.copy_from_bbox(self.figure.bbox)
        # Drawn hidden, the orders title was placed as if the y axis it shares the row with were not
        # there (far above the figure, so every frame drew it out of sight): it sits where the revenue
        # title, on the same row and never hidden, was placed.
        self.orders.title.set_y(self.revenue.title.get_position()[1])
        renderer = self._canvas.get_renderer()
        legends = [panel.axes.legend_ for panel in self._panels if panel.axes.legend_ is not None]
        # a pixel more all round: the region is cut at whole pixels, the frame's edge is not
        self._legends = [self._canvas.copy_from_bbox(legend.get_window_extent(renderer).padded(1)) for legend in legends]

    def render(self, data: DashboardData) -> bytes:
        """One frame as PNG bytes."""
        with self._lock:
            self.update(data)
            key = (data.window_s, *(panel.legend_labels for panel in self._panels))
            if self._background is None or key != self._background_key:
                self._draw_background()
                self._background_key = key
            self._canvas.restore_region(self._background)
            renderer = self._canvas.get_renderer()
            for artist in self._changing():
                artist.draw(renderer)
            for legend in self._legends:
                self._canvas.restore_region(legend)
            image = PilImage.frombuffer("RGBA", self._canvas.get_width_height(), self._canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
            buffer = io.BytesIO()
            # opaque figure: RGB loses nothing; zlib's fastest level costs a few kB a frame
            image.convert("RGB").save(buffer, format="png", compress_level=1)
            return buffer.getvalue()


def dashboard_figure(data: DashboardData, *, size: tuple[float, float] = (10.0, 6.0)) -> Figure:
    """Four panels: orders in vs confirmed per second, revenue per second,
    order → e-mail latency p50/p99, consumer lag per group."""
    return DashboardChart(size).update(data)


def dashboard_png(data: DashboardData, *, size: tuple[float, float] = (10.0, 6.0), dpi: int = 80) -> bytes:
    """One frame as PNG bytes; a live chart keeps a :class:`DashboardChart` instead."""
    return DashboardChart(size, dpi).render(data)


def analytics_figure(
    orders_per_s: pd.Series,
    revenue_per_s: pd.Series,
    basket_sizes: pd.Series,
    top: pd.DataFrame,
    *,
    size: tuple[float, float] = (10.0, 6.0),
) -> Figure:
    """The analytics lesson's four charts: orders/s, revenue/s (confirmed
    orders; rolling means over the raw per-second bars), the basket-size
    histogram and the best sellers. The series are indexed by seconds ago
    (:func:`orderlab.aggregates.per_second`), drawn with now on the right."""
    figure = Figure(figsize=size, layout="constrained")  # drawn once: the nicer layout is affordable
    (rate_ax, revenue_ax), (basket_ax, top_ax) = figure.subplots(2, 2)

    for axes, series, title, colour in (
        (rate_ax, orders_per_s, "orders per second", COLOURS["orders in"]),
        (revenue_ax, revenue_per_s, "revenue per second (EUR, confirmed orders)", COLOURS["revenue"]),
    ):
        axes.bar(series.index, series.values, width=0.9, color=colour, alpha=0.35, label="per second")
        axes.plot(series.index, series.rolling(5, min_periods=1).mean().values, color=colour, linewidth=2, label="5 s rolling mean")
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("seconds ago")
        axes.invert_xaxis()  # the oldest second on the left, now on the right
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)

    if basket_sizes.empty:
        _empty_note(basket_ax, "no orders yet")
    else:
        top_size = int(basket_sizes.max())
        basket_ax.hist(basket_sizes, bins=range(1, top_size + 2), align="left", rwidth=0.8, color="#8c564b")
    basket_ax.set_title("units per order", fontsize=10)
    basket_ax.set_xlabel("units (all line items' quantities)")
    basket_ax.set_ylabel("orders")

    if top.empty:
        _empty_note(top_ax, "no items yet")
    else:
        top_ax.barh(top["name"][::-1], top["units"][::-1], color="#17becf")
    top_ax.set_title("best sellers (units)", fontsize=10)
    return figure
