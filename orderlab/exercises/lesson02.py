"""Lesson 02's exercises: at-most-once and at-least-once, measured on the plain loop's topics.

The facts are a :class:`~orderlab.loops.Delivery`, read back from the topics
and the group's offsets by :func:`orderlab.loops.delivery`; the student
counts the same thing another way (reading the records, or from the loop).
"""

from __future__ import annotations

from typing import Any

from ..loops import Delivery
from . import NotYet, exercise, whole_number

# a loop run: 30 orders handled cleanly, 30 lost 5 with the commit first, 30 answered 5 twice with the commit last
_AFTER_BOTH = Delivery(placed=90, answered=85, outcome_records=90, lost=5, duplicates=5, unread=0)


def _ran(measured: Delivery) -> None:
    if measured.placed == 0:
        raise NotYet("there are no orders on the loop's order_details yet: place some with place_orders(loop, 30)")
    if measured.unread:
        raise NotYet(f"the group has {measured.unread} records it has not committed: restart the loop "
                     "(run it again without crash_after) so that it reads on from its committed offsets")


@exercise(
    "02.at_most_once",
    hint="place 30 orders, run a copy of the loop with consumer.commit() moved above the processing and crash_after=5, "
         "run it again without the crash, then count the orders on order_details that have no outcome",
    facts={"measured": _AFTER_BOTH},
    wrong=0,
    solution=lambda measured: measured.lost,
)
def at_most_once(answer: Any, *, measured: Delivery) -> str:
    count = whole_number(answer, "a count of orders")
    _ran(measured)
    if measured.lost == 0:
        raise NotYet("no order is lost yet: commit before the processing, crash the loop with crash_after, then restart it "
                     "(if the crash fell on a batch's last record there was nothing left to lose: try another crash_after)")
    if count == measured.duplicates and count != measured.lost:
        raise NotYet(f"{count} is the number of outcomes written twice; the question is about orders with no outcome")
    if count != measured.lost:
        raise NotYet(f"{count} is not what the topics say: count the keys of order_details found on neither outcome topic")
    return ("at-most-once, measured: the killed batch was committed before it was processed, so the restart "
            "skipped the orders the crash had not reached")


@exercise(
    "02.at_least_once",
    hint="place 30 orders, run the loop as it is (commit last) with crash_after=5, run it again without the crash, "
         "then count the outcome records beyond the first for an order",
    facts={"measured": _AFTER_BOTH},
    wrong=10,
    solution=lambda measured: measured.duplicates,
)
def at_least_once(answer: Any, *, measured: Delivery) -> str:
    count = whole_number(answer, "a count of orders")
    _ran(measured)
    if measured.duplicates == 0:
        raise NotYet("no order has two outcomes yet: crash the loop as written (commit last) with crash_after, "
                     "then restart it")
    if count == measured.lost and count != measured.duplicates:
        raise NotYet(f"{count} is the number of orders with no outcome; the question is about outcomes written twice")
    if count != measured.duplicates:
        raise NotYet(f"{count} is not what the topics say: outcome records minus the orders that have one")
    return ("at-least-once, measured: the killed batch was never committed, so the restart read it again "
            "and answered twice the orders handled before the crash; none was lost")
