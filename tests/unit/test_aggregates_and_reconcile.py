import math

import pandas as pd

from orderlab import aggregates
from orderlab.reconcile import account


def orders_frame(rows):
    return pd.DataFrame(rows, columns=aggregates.ORDER_COLUMNS)


def test_orders_per_second_fills_quiet_seconds_and_skips_the_current_one():
    frame = orders_frame([
        ("a", 0, 97.2, 100, 1), ("b", 0, 97.9, 200, 2), ("c", 0, 99.5, 300, 1), ("d", 0, 100.2, 50, 1),
    ])
    series = aggregates.orders_per_second(frame, now=100.5, window_s=4)
    assert list(series.index) == [4, 3, 2, 1] and series.index.name == "seconds_ago"  # oldest first, all positive
    assert list(series.values) == [0.0, 2.0, 0.0, 1.0]
    every_one_paid = outcomes_frame([(order_id, True) for order_id in "abcd"])
    revenue = aggregates.revenue_per_second(frame, every_one_paid, now=100.5, window_s=4)
    assert list(revenue.values) == [0.0, 3.0, 0.0, 3.0]


def outcomes_frame(rows):
    return pd.DataFrame([(order_id, approved, 0.0, 0.0) for order_id, approved in rows], columns=aggregates.OUTCOME_COLUMNS)


def test_revenue_counts_confirmed_orders_once_and_declined_ones_never():
    frame = orders_frame([("a", 0, 97.2, 100, 1), ("b", 0, 97.9, 200, 2), ("c", 0, 99.5, 300, 1), ("d", 0, 99.6, 50, 1)])
    # b declined, d not settled yet, a confirmed twice (an outcome redelivered)
    outcomes = outcomes_frame([("a", True), ("b", False), ("c", True), ("a", True)])
    assert list(aggregates.confirmed_orders(frame, outcomes).order_id) == ["a", "c"]
    assert list(aggregates.revenue_per_second(frame, outcomes, now=100.5, window_s=4).values) == [0.0, 1.0, 0.0, 3.0]
    summary = aggregates.summary(frame, pd.DataFrame(columns=aggregates.ITEM_COLUMNS), outcomes, now=100.5, window_s=10)
    assert summary["revenue"] == 4.0 and summary["orders"] == 4.0 and summary["revenue_per_s"] == 0.4
    assert aggregates.summary(frame, pd.DataFrame(columns=aggregates.ITEM_COLUMNS), outcomes.iloc[0:0], 100.5)["revenue"] == 0.0


def test_top_items_and_basket():
    items = pd.DataFrame([
        ("a", "KB", "Keyboard", 1, 100), ("b", "MS", "Mouse", 3, 30), ("c", "KB", "Keyboard", 1, 100),
    ], columns=aggregates.ITEM_COLUMNS)
    top = aggregates.top_items(items, 1)
    assert list(top.index) == ["MS"] and top.iloc[0]["units"] == 3
    only_paid = aggregates.top_items(items, 5, outcomes=outcomes_frame([("a", True), ("b", False), ("c", True)]))
    assert list(only_paid.index) == ["KB"] and only_paid.iloc[0]["units"] == 2 and only_paid.iloc[0]["revenue"] == 2.0
    basket = aggregates.basket_size(orders_frame([("a", 0, 0, 1, 1), ("b", 0, 0, 1, 3)]))
    assert basket["mean"] == 2.0 and basket["max"] == 3.0


def test_decline_rate_and_latency():
    outcomes = pd.DataFrame([
        ("a", True, 10.0, 10.010), ("b", False, 10.0, 10.020), ("c", True, 10.0, 10.030), ("d", True, 10.0, 10.040),
    ], columns=aggregates.OUTCOME_COLUMNS)
    assert aggregates.decline_rate(outcomes) == 0.25
    latency = aggregates.confirmation_latency(outcomes)
    assert math.isclose(latency["p50"], 25.0, rel_tol=1e-6)
    assert aggregates.decline_rate(outcomes.iloc[0:0]) == 0.0
    assert math.isnan(aggregates.confirmation_latency(outcomes.iloc[0:0])["p99"])


def test_account_counts_lost_and_duplicated():
    result = account(
        placed=["a", "b", "c", "d"],
        confirmed=["a", "a", "b"],
        declined=["c"],
        emailed=["a", "a"],
        analytics_seen=4,
        dead_lettered=2,
    )
    assert (result.orders_confirmed, result.orders_declined, result.emails_sent) == (2, 1, 1)
    assert result.lost == 2  # d has no outcome; b was confirmed but not e-mailed
    assert result.duplicated == 2 and result.duplicate_confirmations == 1 and result.duplicate_emails == 1
    assert not result.ok


def test_account_all_good():
    result = account(["a", "b"], ["a"], ["b"], ["a"], 2, 0)
    assert result.ok and result.lost == 0
