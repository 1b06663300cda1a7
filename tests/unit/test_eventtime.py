"""Lesson 04's event time and processing time, and its chart, on hand-made frames."""

from __future__ import annotations

import pandas as pd

from orderlab import aggregates
from orderlab.eventtime import late_effect, readable, window_counts, window_start
from orderlab.ui import analytics_figure

T0 = 1_700_000_000.0  # a multiple of 10 s: windows start at T0, T0 + 10...


def orders(rows):
    return pd.DataFrame([(order_id, created, seen, 100, 1) for order_id, created, seen in rows], columns=aggregates.ORDER_COLUMNS)


def test_readable_turns_unix_seconds_into_utc_timestamps_and_leaves_the_rest():
    frame = readable(orders([("a", T0 + 1.5, T0 + 1.75), ("b", T0 + 9.9999, T0 + 10.0)]))
    assert frame.loc[0, "created_at"] == pd.Timestamp("2023-11-14 22:13:21.5", tz="UTC")
    assert frame.loc[0, "seen_at"] - frame.loc[0, "created_at"] == pd.Timedelta(milliseconds=250)
    # cut to the millisecond, downwards: a time just before a window's end stays in that window
    assert frame.loc[1, "created_at"].floor("10s") == window_start(T0 + 9.9999) == window_start(T0)
    assert frame.loc[0, "total_cents"] == 100


def test_window_counts_cover_every_window_from_the_first_to_the_last():
    counts = window_counts(orders([("a", T0 + 1, 0), ("b", T0 + 9.9, 0), ("c", T0 + 31, 0)]), "created_at")
    assert list(counts.index) == [window_start(T0 + offset) for offset in (0, 10, 20, 30)]
    assert counts.tolist() == [2, 0, 0, 1]
    assert window_counts(orders([]), "seen_at").empty


def test_a_late_order_changes_an_old_window_by_event_time_and_the_current_one_by_processing_time():
    before = orders([("a", T0 + 31, T0 + 31.1), ("b", T0 + 42, T0 + 42.1)])
    late = orders([("late", T0 + 12, T0 + 42.5)])  # made 30 s before it was seen
    effect = late_effect(before, pd.concat([before, late], ignore_index=True))
    assert effect.to_dict("index") == {
        window_start(T0 + 10): {"by event time (created_at)": 1, "by processing time (seen_at)": 0},
        window_start(T0 + 40): {"by event time (created_at)": 0, "by processing time (seen_at)": 1},
    }
    assert late_effect(before, before).empty


def test_the_analytics_chart_draws_now_on_the_right_and_says_revenue_is_confirmed_orders():
    per_s = pd.Series([1.0, 2.0, 3.0], index=pd.Index([3, 2, 1], name="seconds_ago"))
    items = pd.DataFrame([("a", "MS-002", "Wireless mouse", 2, 4998)], columns=aggregates.ITEM_COLUMNS)
    figure = analytics_figure(per_s, per_s, pd.Series([1, 2, 3]), aggregates.top_items(items))
    rate_axes, revenue_axes = figure.axes[0], figure.axes[1]
    left, right = rate_axes.get_xlim()
    assert left > right  # seconds ago decrease to the right
    assert "confirmed" in revenue_axes.get_title()
