"""Lesson 04's exercises: revenue from confirmed orders, the best seller by revenue, a late order's window."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import aggregates
from ..eventtime import window_start
from . import NotYet, a_number, exercise

_T0 = 1_700_000_000.0
# a small run: four orders (b declined, d the late one, made 30 s before it was seen) and their items
_ORDERS = pd.DataFrame(
    [("a", _T0 + 30.1, _T0 + 30.2, 2_499, 1), ("b", _T0 + 30.5, _T0 + 30.6, 22_900, 1),
     ("c", _T0 + 31.0, _T0 + 31.1, 7_497, 3), ("d", _T0 + 2.0, _T0 + 32.1, 22_900, 1)],
    columns=aggregates.ORDER_COLUMNS,
)
_OUTCOMES = pd.DataFrame(
    [("a", True, _T0 + 30.1, _T0 + 30.3), ("b", False, _T0 + 30.5, _T0 + 30.7),
     ("c", True, _T0 + 31.0, _T0 + 31.2), ("d", True, _T0 + 2.0, _T0 + 32.2)],
    columns=aggregates.OUTCOME_COLUMNS,
)
_ITEMS = pd.DataFrame(
    [("a", "MS-002", "Wireless mouse", 1, 2_499), ("b", "MN-003", "27-inch monitor", 1, 22_900),
     ("c", "MS-002", "Wireless mouse", 3, 7_497), ("d", "MN-003", "27-inch monitor", 1, 22_900)],
    columns=aggregates.ITEM_COLUMNS,
)


def _average_confirmed(orders: pd.DataFrame, outcomes: pd.DataFrame) -> float:
    paid = aggregates.confirmed_orders(orders, outcomes)
    return float(paid["total_cents"].sum() / len(paid) / 100.0) if len(paid) else 0.0


@exercise(
    "04.average_value",
    hint="revenue counts confirmed orders only: keep the orders whose order_id has approved == True in outcomes, "
         "then average their total_cents (in EUR, not cents)",
    facts={"orders": _ORDERS, "outcomes": _OUTCOMES},
    wrong=float(_ORDERS["total_cents"].mean() / 100.0),
    solution=lambda orders, outcomes: _average_confirmed(orders, outcomes),
)
def average_value(answer: Any, *, orders: pd.DataFrame, outcomes: pd.DataFrame) -> str:
    value = a_number(answer, "an amount in EUR")
    expected = _average_confirmed(orders, outcomes)
    every_order = float(orders["total_cents"].mean() / 100.0) if len(orders) else 0.0
    if abs(value - expected * 100) < 1:
        raise NotYet("that is in cents: divide by 100 for EUR")
    if abs(value - every_order) < 0.01 and abs(every_order - expected) >= 0.01:
        raise NotYet("that is the average over every order, declined ones too: a declined order earned nothing")
    if abs(value - expected) >= 0.01:
        raise NotYet(f"{value:.2f} EUR is not it: total_cents of the confirmed orders, divided by their number, / 100")
    return "the average confirmed order, from the confirmed orders alone"


def _best_by_revenue(items: pd.DataFrame, outcomes: pd.DataFrame) -> str:
    top = aggregates.top_items(items, len(items), outcomes)
    return str(top.sort_values("revenue", ascending=False)["name"].iloc[0])


def _best_by_units(items: pd.DataFrame, outcomes: pd.DataFrame) -> str:
    return str(aggregates.top_items(items, 1, outcomes)["name"].iloc[0])


@exercise(
    "04.best_by_revenue",
    hint="keep the items of confirmed orders, group them by name and sum revenue_cents; give the name with the largest sum",
    facts={"items": _ITEMS, "outcomes": _OUTCOMES},
    wrong="Wireless mouse",
    solution=lambda items, outcomes: _best_by_revenue(items, outcomes),
)
def best_by_revenue(answer: Any, *, items: pd.DataFrame, outcomes: pd.DataFrame) -> str:
    if not isinstance(answer, str):
        raise NotYet(f"give the product's name as a string, not a {type(answer).__name__}")
    expected = _best_by_revenue(items, outcomes)
    sku = str(items.loc[items["name"] == expected, "sku"].iloc[0])
    if answer in (expected, sku):
        return f"{expected} earns the most, though it is not the product sold most often"
    if answer == _best_by_units(items, outcomes):
        raise NotYet(f"{answer} sells the most units; the question is which one brings in the most money")
    if answer not in set(items["name"]) | set(items["sku"]):
        raise NotYet(f"{answer!r} is not a product in the items frame: copy a name from its 'name' column")
    raise NotYet(f"{answer} is not the top one by revenue: sum revenue_cents per name over the confirmed orders' items")


@exercise(
    "04.late_window",
    hint="find the late order's row in orders; its created_at (event time), floored to 10 s, is the window start",
    facts={"orders": _ORDERS, "order_id": "d", "width": "10s"},
    wrong=window_start(float(_ORDERS.loc[3, "seen_at"])),
    solution=lambda orders, order_id, width: window_start(
        float(orders.loc[orders["order_id"] == order_id, "created_at"].iloc[0]), width),
)
def late_window(answer: Any, *, orders: pd.DataFrame, order_id: str, width: str) -> str:
    row = orders.loc[orders["order_id"] == order_id]
    if row.empty:
        raise NotYet(f"analytics has not seen order {order_id!r}: place the late order (and wait for it) first")
    try:
        given = pd.Timestamp(answer)
    except (TypeError, ValueError):
        raise NotYet(f"give the window start as a timestamp (a pandas Timestamp), not {answer!r}") from None
    given = given.tz_localize("UTC") if given.tzinfo is None else given.tz_convert("UTC")
    created, seen = float(row["created_at"].iloc[0]), float(row["seen_at"].iloc[0])
    expected = window_start(created, width)
    if given == expected:
        return "the late order counts in the event-time window of when it was made, long after that window closed"
    if given == window_start(seen, width):
        raise NotYet("that is its window by processing time (seen_at); the question is about event time")
    if given.floor(width) == expected:
        raise NotYet(f"that is when it was made; give the start of its {width} window (.floor({width!r}))")
    raise NotYet(f"{given} is not the start of the {width} window its created_at falls in")
