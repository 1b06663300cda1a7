"""The control room's charts drawn in a helper process: the same frames, a fallback when it is away, nothing left behind."""

from __future__ import annotations

import gc
import logging
from dataclasses import replace

import pytest

from orderlab.ui.chart_process import ChartFrameError, ChartProcess
from orderlab.ui.chartdata import Sample, dashboard_data
from orderlab.ui.charts import DashboardChart


def samples(count: int, per_s: int = 100) -> list[Sample]:
    return [Sample(1000.0 + n, n * per_s, n * per_s * 9 // 10, revenue_cents=n * 5000) for n in range(count)]


def frames() -> tuple:
    return (dashboard_data(samples(10), [], now=1009.0),
            dashboard_data(samples(30, per_s=300), [(1000.0 + i, 1000.2 + i) for i in range(29)], now=1029.0))


def test_the_child_draws_the_same_frames_as_a_chart_in_this_process_and_ends_on_close():
    first, later = frames()
    charts = ChartProcess()
    try:
        charts.start()
        child = charts._child
        assert charts.render(first) == DashboardChart().render(first)
        assert charts.render(later) == DashboardChart().render(later)
        assert charts._child is child and charts.frames_here == 0  # one child for every frame
    finally:
        charts.close()
    assert child.poll() is not None  # ended, not left behind
    charts.close()  # again: nothing to do


def test_a_child_that_cannot_start_leaves_the_frames_to_this_process(caplog):
    first, _ = frames()
    charts = ChartProcess(module="orderlab.ui.no_such_chart_child")
    with caplog.at_level(logging.WARNING, logger="orderlab.ui.chart_process"):
        assert charts.render(first) == DashboardChart().render(first)
        assert charts.render(first) == DashboardChart().render(first)
    assert charts.frames_here == 2 and charts._child is None
    # tried once, then left alone for RETRY_AFTER_S: one warning, in one line
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "chart process" in warnings[0]
    charts.close()


def test_a_frame_the_chart_cannot_draw_is_an_error_and_the_child_draws_the_next_one():
    first, _ = frames()
    charts = ChartProcess()
    try:
        with pytest.raises(ChartFrameError, match="AttributeError"):
            charts.render(replace(first, rates=None))
        assert charts.render(first) == DashboardChart().render(first) and charts.frames_here == 0
    finally:
        charts.close()


def test_a_chart_process_nobody_holds_any_more_stops_its_child():
    charts = ChartProcess()
    charts.start()
    child = charts._child
    del charts
    gc.collect()
    assert child.wait(10) is not None


def test_a_child_that_hangs_costs_one_late_frame_which_is_drawn_here(caplog):
    """A child that stops answering (here: stopped by a signal) is given FRAME_TIMEOUT_S, then left alone."""
    import os
    import signal
    import threading

    first, _ = frames()
    charts = ChartProcess()
    charts.FRAME_TIMEOUT_S = 0.5
    try:
        assert charts.render(first) == DashboardChart().render(first)  # started and answering
        child = charts._child
        os.kill(child.pid, signal.SIGSTOP)
        threading.Timer(2.0, os.kill, (child.pid, signal.SIGCONT)).start()  # then it sees its input closed, and ends
        with caplog.at_level(logging.WARNING, logger="orderlab.ui.chart_process"):
            assert charts.render(first) == DashboardChart().render(first)
        assert charts.frames_here == 1 and charts._child is None
        assert "did not answer within 0.5 s" in caplog.records[-1].getMessage()
        assert child.wait(15) is not None
    finally:
        charts.close()
