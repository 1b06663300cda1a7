"""Lesson 10's exercises: what a reset group reads again, and what a compacted topic still says."""

from __future__ import annotations

from typing import Any

from ..retention import customers_left as rebuilt_customers
from . import NotYet, exercise


def _whole_number(answer: Any, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    return answer


@exercise(
    "10.read_again",
    hint="count what the replay group reads on each of its topics after the cutoff, not only on order_details",
    facts={"measured": 80, "orders": 40},
    wrong=40,
    solution=lambda measured, orders: measured,
)
def read_again(answer: Any, *, measured: int, orders: int) -> str:
    records = _whole_number(answer, "a number of records")
    if records == orders and records != measured:
        raise NotYet("those are the orders, on order_details; the group reads the payment outcomes too, from the same time on")
    if records != measured:
        raise NotYet(f"{records} is not it: each order after the cutoff left records on more than one of the group's topics")
    return f"the reset group read {measured} records again: {orders} orders and their outcomes"


def _keys_written(records: list[tuple[str, Any]]) -> int:
    return len({key for key, _ in records})


@exercise(
    "10.customers_left",
    hint="replay the writes in your head, in order: a profile replaces the customer's last one, a tombstone removes it",
    facts={"records": [("c-0001", {"city": "Graz"}), ("c-0002", {"city": "Brno"}), ("c-0002", None),
                       ("c-0003", {"city": "Turku"}), ("c-0001", {"city": "Leuven"})]},
    wrong=3,
    solution=lambda records: rebuilt_customers(records),
)
def customers_left(answer: Any, *, records: list[tuple[str, Any]]) -> str:
    expected = rebuilt_customers(records)
    customers = _whole_number(answer, "a number of customers")
    if customers == _keys_written(records) and customers != expected:
        raise NotYet("that counts every customer id ever written; a tombstone takes its customer out of the table")
    if customers != expected:
        raise NotYet(f"{customers} is not it: which customers' last record is a profile, not a tombstone?")
    return f"the table rebuilt from the topic holds {expected} customers"
