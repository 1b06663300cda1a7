"""Back-off after a failed poll or batch (the broker away, a send timing out):
0.2 s, doubling to 2 s, reset by the first batch that goes through.

A failure for a broker reason (a retriable Kafka error: a timeout, a lost
connection, a leader moving) is a symptom of an outage: the role's
:class:`~orderlab.services.outage.Outage` says once that the broker is lost,
and once that it is back. Any other failure gets one warning per run of failures.
"""

from __future__ import annotations

import logging

from kafka.errors import KafkaError

from ..clients import BrokerUnavailable
from .base import Counters
from .outage import Outage

log = logging.getLogger("orderlab.services.consumer")


def is_broker_trouble(exc: BaseException) -> bool:
    """Whether a failure is about reaching the broker (try again later), not about the work or a record."""
    return isinstance(exc, BrokerUnavailable) or (isinstance(exc, KafkaError) and bool(exc.retriable))


class BackOff:
    """How long a worker waits before trying again, and what it says about the failures."""

    first_s = 0.2
    longest_s = 2.0

    def __init__(self, name: str, counters: Counters, outage: Outage) -> None:
        self.name = name
        self.counters = counters
        self.outage = outage
        self.failures_in_a_row = 0

    def failed(self, what: str, exc: BaseException) -> float:
        """Count a failure of ``what`` (``poll``, ``batch``); return the seconds to wait before the next try."""
        self.failures_in_a_row += 1
        self.counters.add("retries")
        delay = min(self.longest_s, self.first_s * 2 ** (self.failures_in_a_row - 1))
        if is_broker_trouble(exc):
            # a poll or batch fails for a broker reason only after its own timeout: no grace
            self.outage.failing(what, f"{what} failed: {type(exc).__name__}: {exc}", at_once=True)
            level = logging.DEBUG
        else:
            level = logging.WARNING if self.failures_in_a_row == 1 else logging.DEBUG
        log.log(level, "%s: %s failed (%s: %s); retrying in %.1f s", self.name, what, type(exc).__name__, exc, delay)
        return delay

    def polled(self, *, connected: bool = True) -> None:
        """A poll went through (with or without records); ``connected``: the consumer holds a connection to a broker.

        A poll also "goes through" with the broker away: kafka-python then
        returns no records rather than an error. Such a poll does not end the
        outage a failed poll began: the role said it was back 0.3 s after it
        had lost the broker, and lost it again two seconds later.
        """
        if connected:
            self.outage.fine("poll")

    def succeeded(self) -> None:
        """A batch went through: the next failure waits the shortest time again."""
        self.failures_in_a_row = 0
        self.outage.fine("poll")
        self.outage.fine("batch")
