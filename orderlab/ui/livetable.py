"""A table that redraws itself: a function's DataFrame shown in an ``ipywidgets.HTML``, refreshed by a thread.

For the lessons that watch the broker change under them (lesson 09: who
leads each partition while a node dies; lesson 10: a topic's first offset
while its oldest segment expires). The ui never talks to Kafka: the caller
gives ``read``, a function that returns ``(frame, caption)``; the table only
calls it about once a second from a :class:`~orderlab.ui.refresher.Refresher`
thread and renders the result.

Every frame comes from one call of ``read``, so what the widget shows is
always one consistent reading, never half of one and half of the next.
:meth:`LiveTable.stop` draws a last frame and then freezes, so a notebook
saved after it stores that final reading. A failed read keeps the last good
table and says so in the caption, on one line.
"""

from __future__ import annotations

import html
import time
from typing import Any, Callable

import ipywidgets as widgets
import pandas as pd

from .refresher import Refresher

Reading = tuple[pd.DataFrame, str]


def _cell(value: Any) -> str:
    """A tuple of node ids as ``2, 3, 1``; a missing value as ``-``."""
    if isinstance(value, (tuple, list)):
        return ", ".join(str(item) for item in value) if value else "-"
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    return str(value)


def frame_html(frame: pd.DataFrame) -> str:
    """The frame as a plain HTML table (tuples joined, missing values as ``-``)."""
    shown = frame.copy()
    for column in shown.columns:
        shown[column] = shown[column].map(_cell)
    return shown.to_html(border=0, classes="orderlab-live-table", escape=True)


class LiveTable:
    """``table = LiveTable(read, title=...).start(); table`` shows it; ``table.stop()`` freezes the last frame.

    ``read()`` returns ``(DataFrame, caption)``; ``interval_s`` is the time
    between readings; ``on_stop`` is called once, after the last frame (to
    close the connection ``read`` used); ``placeholder`` is what a saved
    notebook shows where widgets are not live.
    """

    def __init__(
        self,
        read: Callable[[], Reading],
        *,
        title: str,
        interval_s: float = 1.0,
        on_stop: Callable[[], None] | None = None,
        placeholder: str | None = None,
    ) -> None:
        self.read = read
        self.title = title
        self.on_stop = on_stop
        self.placeholder = placeholder or f"{title} (a live table: run the notebook to see it refresh)"
        self.frames = 0
        self.last: Reading | None = None
        self.problem = ""
        self.widget = widgets.HTML(value=self._render(None, "waiting for the first reading..."))
        self.widget.add_class("orderlab-live-table")
        self.refresher = Refresher(self.refresh_once, interval_s, on_error=self._failed, name="orderlab-live-table")
        self._stopped = False

    # -- display ----------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.placeholder
        return bundle

    def _render(self, frame: pd.DataFrame | None, caption: str) -> str:
        body = frame_html(frame) if frame is not None else ""
        return (
            f"<div><b>{html.escape(self.title)}</b><br/>"
            f"<span style='font-size: 90%'>{html.escape(caption)}</span>{body}</div>"
        )

    # -- lifecycle ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.refresher.running

    def start(self, first_frame_s: float = 10.0) -> "LiveTable":
        """Refresh in the background; returns once the first reading is drawn (or failed), at most ``first_frame_s``."""
        if self._stopped:
            raise RuntimeError("this live table was stopped: make a new one to watch again")
        self.refresher.start()
        deadline = time.monotonic() + first_frame_s
        while self.refresher.ticks + self.refresher.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> Reading | None:
        """Stop refreshing, draw a last frame, release what ``read`` used; returns the last reading. Idempotent."""
        if self._stopped:
            return self.last
        self.refresher.stop()
        self.refresher.refresh()
        self._stopped = True
        if self.on_stop is not None:
            self.on_stop()
        return self.last

    # -- one frame ------------------------------------------------------------------
    def refresh_once(self) -> None:
        """One reading, rendered (the refresher's work)."""
        frame, caption = self.read()
        self.last = (frame, caption)
        self.problem = ""
        self.frames += 1
        self.widget.value = self._render(frame, f"{caption} · read at {time.strftime('%H:%M:%S')}")

    def _failed(self, exc: BaseException) -> None:
        lines = str(exc).strip().splitlines()
        self.problem = lines[0] if lines else type(exc).__name__
        frame, caption = self.last if self.last is not None else (None, "")
        self.widget.value = self._render(frame, f"{caption} · could not read just now: {self.problem}")
