"""Helpers for lesson 02's plain kafka-python loop: consume → process → produce → commit.

The loop itself is written out in the notebook, with a ``KafkaConsumer`` and
a ``KafkaProducer`` and nothing in between; these are the pieces around it:
orders to read (:func:`place_orders`), the work of one record
(:func:`take_payment`), when to stop (:func:`caught_up`), a crash
(:func:`kill`) and the accounting afterwards (:func:`delivery`), which reads
the topics back to count what was lost and what was written twice.

The real Transactions Backend (``orderlab.services``) runs the same loop with
what a long-running role needs besides: dead letters for unreadable records,
payments made idempotent by a ledger, a rewind when the broker is away.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, NoReturn

from .clients import make_producer
from .events import ConfirmedOrder, DeclinedOrder, decode_order, encode_confirmed, encode_declined, encode_order
from .generator import OrderFactory
from .payments import PaymentRules, decide_payment
from .peek import committed_offsets
from .reconcile import read_topic_keys
from .services.faults import abandon
from .settings import Settings

# The plain loop's payment rules: one order in five declined.
LOOP_RULES = PaymentRules(decline_probability=0.2)


class ProcessKilled(RuntimeError):
    """The plain loop was killed by :func:`kill`, like a process ended with ``kill -9``."""


def place_orders(settings: Settings, count: int, *, seed: int | None = None) -> list[str]:
    """Put ``count`` made-up orders on this run's ``order_details``, keyed by order id; returns their ids."""
    factory = OrderFactory(seed=seed, customers=20)
    producer = make_producer(settings)
    try:
        orders = [factory.make() for _ in range(count)]
        for order in orders:
            producer.send(settings.order_details_topic, key=order.order_id.encode(), value=encode_order(order))
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
    return [order.order_id for order in orders]


def take_payment(settings: Settings, value: bytes | None) -> tuple[str, bytes]:
    """The work for one ``order_details`` record: decide its payment; returns ``(topic, value)`` of the outcome.

    The decision is seeded by the order id, so the same order gets the same
    answer each time it is read (as a card network answers a retried request).
    An unreadable record raises :class:`~orderlab.events.EventError`: this
    loop has no dead-letter topic.
    """
    order = decode_order(value)
    result = decide_payment(order, LOOP_RULES, random.Random(order.order_id))
    if result.approved:
        return settings.order_confirmed_topic, encode_confirmed(ConfirmedOrder(order, result.payment_id, result.processed_at))
    return settings.order_declined_topic, encode_declined(DeclinedOrder(order, result.reason, result.processed_at))


def caught_up(consumer: Any) -> bool:
    """Whether the consumer holds partitions and its position is at the end of each (as of now).

    False before the first ``poll``: a consumer gets its partitions from the
    group only while polling.
    """
    assigned = list(consumer.assignment())
    if not assigned:
        return False
    ends = consumer.end_offsets(assigned)
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def kill(consumer: Any, producer: Any) -> NoReturn:
    """End the loop here, as if its process were killed: raises :class:`ProcessKilled`.

    What the loop sent so far reaches the broker (usually true of a real
    crash too; what a killed producer had not sent yet is lost with it). Then
    both clients are dropped without a commit and without leaving the group:
    the group gives the partitions to the next consumer only once this one's
    session times out (``session_timeout_ms``).
    """
    producer.flush(timeout=30)
    abandon(consumer)
    producer.close(timeout=0)
    raise ProcessKilled("the loop was killed mid-batch (like kill -9): run it again to restart it")


@dataclass(frozen=True)
class Delivery:
    """What a run's topics say about its orders, read back after the loop ran."""

    placed: int  # orders on order_details
    answered: int  # orders with at least one outcome record
    outcome_records: int  # records on order_confirmed and order_declined
    lost: int  # orders placed with no outcome at all
    duplicates: int  # outcome records beyond the first for an order
    unread: int  # records the transactions group has not committed yet

    def line(self) -> str:
        """One line for a cell's output."""
        return (f"placed {self.placed}, with an outcome {self.answered}, lost {self.lost}, "
                f"duplicate outcomes {self.duplicates}, not yet committed {self.unread}")


def delivery(settings: Settings) -> Delivery:
    """Read this run's topics and the transactions group's offsets: how many orders were lost, how many answered twice."""
    placed = set(read_topic_keys(settings, settings.order_details_topic))
    outcomes = Counter(read_topic_keys(settings, settings.order_confirmed_topic))
    outcomes.update(read_topic_keys(settings, settings.order_declined_topic))
    offsets = committed_offsets(settings, settings.group_id("transactions"), settings.order_details_topic)
    return Delivery(
        placed=len(placed),
        answered=len(placed & set(outcomes)),
        outcome_records=sum(outcomes.values()),
        lost=len(placed - set(outcomes)),
        duplicates=sum(count - 1 for count in outcomes.values()),
        unread=int(offsets["lag"].sum()),
    )
