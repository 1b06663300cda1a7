"""The control room's charts, drawn in a helper process.

A frame of the live charts is about 40 ms of Agg drawing and PNG encoding,
all of it holding the GIL of the process that also runs the pipeline: in a
classroom run at 1000 orders/s the frames took an eighth of the kernel's GIL
time, and at the top rates the roles fell behind for want of it. A
:class:`ChartProcess` sends each frame's data (a few small frames of numbers)
to a child with a GIL of its own (:mod:`orderlab.ui.chart_child`) and gets
the same PNG bytes back; the kernel only pickles and waits.

If the child cannot be started or dies, the frame is drawn here instead, as
before, and the child is tried again after :attr:`ChartProcess.RETRY_AFTER_S`:
the charts never stop for it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from ..childproc import read_frame_within, start_child, stop_child, write_frame
from .chartdata import DashboardData
from .charts import DashboardChart

log = logging.getLogger(__name__)

CHILD_MODULE = "orderlab.ui.chart_child"  # started as ``python -m``


class ChartFrameError(RuntimeError):
    """The chart could not draw a frame (the same error in the child as it would be here)."""


class ChartProcess:
    """A :class:`~orderlab.ui.charts.DashboardChart` in a child process: :meth:`render` gives the same PNG bytes.

    The child starts on first use (:meth:`start` starts it earlier) and
    again after it ended; :meth:`close` stops it and may be called any
    number of times.
    """

    START_TIMEOUT_S = 30.0
    FRAME_TIMEOUT_S = 10.0  # a frame takes 40-300 ms: a child this late is stuck, and the frame is drawn here
    RETRY_AFTER_S = 30.0

    def __init__(self, size: tuple[float, float] = (10.0, 6.0), dpi: int = 80, *, module: str = CHILD_MODULE) -> None:
        self.size = size
        self.dpi = dpi
        self.module = module
        self.frames_here = 0  # frames drawn in this process because the child was not there
        self._child: Any = None
        self._ended: Any = None  # weakref.finalize that stops the child: on close, or once nobody holds this
        self._ready = False
        self._failed_at: float | None = None
        self._here: DashboardChart | None = None
        self._lock = threading.Lock()  # one frame at a time over the one pipe

    def start(self) -> None:
        """Start the child now, without waiting for it (it imports matplotlib meanwhile)."""
        with self._lock:
            if self._child is None and not self._resting():
                try:
                    self._spawn()
                except OSError as exc:  # no process to be had: frames are drawn here, as when it dies
                    self._away(exc)

    def render(self, data: DashboardData) -> bytes:
        """One frame as PNG bytes, drawn by the child or, while it is away, here."""
        with self._lock:
            if not self._resting():
                try:
                    return self._ask(data)
                except (OSError, EOFError, ValueError) as exc:
                    self._away(exc)
            self.frames_here += 1
            if self._here is None:
                self._here = DashboardChart(self.size, self.dpi)
            return self._here.render(data)

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the child -------------------------------------------------------------
    def _away(self, exc: BaseException) -> None:
        """The child could not start, died or hangs: stop it and draw here for :attr:`RETRY_AFTER_S`."""
        self._stop()
        self._failed_at = time.monotonic()
        log.warning("control room: the chart process is away (%s); drawing the charts in the kernel", exc)

    def _resting(self) -> bool:
        """Whether the child failed lately, so that frames are drawn here for a while."""
        return self._failed_at is not None and time.monotonic() - self._failed_at < self.RETRY_AFTER_S

    def _spawn(self) -> None:
        width, height = self.size
        self._child = start_child(self.module, repr(float(width)), repr(float(height)), str(self.dpi))
        # a control room dropped without stop() (a test, a cell run again) leaves no helper behind
        self._ended = weakref.finalize(self, stop_child, self._child)
        self._ready = False

    def _ask(self, data: DashboardData) -> bytes:
        if self._child is None:
            self._spawn()
        child = self._child
        if not self._ready:
            read_frame_within(child, self.START_TIMEOUT_S, "chart process")
            self._ready = True
            self._failed_at = None
        write_frame(child.stdin, "frame", data)
        kind, answer = read_frame_within(child, self.FRAME_TIMEOUT_S, "chart process", awaited="answer")
        if kind == "error":
            raise ChartFrameError(answer)
        return answer

    def _stop(self) -> None:
        ended, self._ended, self._child = self._ended, None, None
        self._ready = False
        if ended is not None:
            ended()  # stop_child, once
