"""Consumer roles: poll a batch, do the work, wait for the output to be
acknowledged, then commit. That order is what makes delivery at-least-once:
a crash before the commit means the batch is read again, never lost.

A record that cannot be decoded goes to the dead-letter topic (and its
offset is committed with the rest): the role keeps going.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from ..clients import make_consumer, make_producer
from ..dlq import send_to_dlq
from ..events import EventError
from ..settings import Settings
from .base import Service

log = logging.getLogger(__name__)

Event = TypeVar("Event")


@dataclass(frozen=True)
class Received(Generic[Event]):
    """A decoded record with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: Event


class SimulatedCrash(BaseException):
    """Raised inside a worker to end it like a killed process: no commit, no clean leave."""


def next_offsets(records: Iterable[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit after ``records``: one past the last of each partition."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        current = offsets.get(tp)
        if current is None or record.offset + 1 > current.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets


class ConsumerService(Service, Generic[Event]):
    """A role that consumes ``topics`` in group ``group_id(role)``.

    A subclass sets ``decoders`` (topic → decode function) and writes
    :meth:`process`, which returns the futures of what it sent.
    """

    poll_timeout_ms = 100

    def __init__(self, settings: Settings, *, producer: KafkaProducer | None = None, name: str | None = None) -> None:
        super().__init__(settings, name=name)
        self._shared_producer = producer
        self.producer: KafkaProducer | None = producer
        self.consumer: KafkaConsumer | None = None
        self._crash_requested = False
        self._crash_after_send = False

    # what the subclass provides ---------------------------------------------
    def topics(self) -> tuple[str, ...]:
        raise NotImplementedError

    def decoder(self, topic: str) -> Callable[[bytes | None], Event]:
        raise NotImplementedError

    def process(self, batch: list[Received[Event]]) -> list[Any]:
        """Do the work for a batch; return the futures of the records sent."""
        raise NotImplementedError

    def consumer_overrides(self) -> dict[str, Any]:
        return {}

    @property
    def group_id(self) -> str:
        return self.settings.group_id(self.role)

    # lifecycle -----------------------------------------------------------------
    def setup(self) -> None:
        if self.producer is None:
            self.producer = self.make_own_producer()
        self.consumer = make_consumer(self.settings, self.group_id, *self.topics(), **self.consumer_overrides())

    def make_own_producer(self) -> KafkaProducer:
        return make_producer(self.settings)

    def close(self) -> None:
        if self.consumer is not None:
            # autocommit is off: whatever was not committed after its work is read again
            self.consumer.close(autocommit=False)
        if self.producer is not None and self.producer is not self._shared_producer:
            self.producer.close(timeout=5)

    def crash(self, after_send: bool = True) -> None:
        """Fault injection: end the worker at its next batch like a killed process.

        With ``after_send`` the batch's output is sent (and may be visible)
        but its offsets are never committed, which is the window where
        at-least-once delivery produces duplicates.
        """
        self._crash_after_send = after_send
        self._crash_requested = True

    def loop(self) -> None:
        assert self.consumer is not None
        while not self.stopping:
            polled = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
            if not polled:
                self.idle()
                continue
            raw_records = [record for records in polled.values() for record in records]
            try:
                self.handle(raw_records)
            except SimulatedCrash:
                self._die()
                return

    def idle(self) -> None:
        """Called after an empty poll."""

    def _die(self) -> None:
        """Drop the clients without committing or leaving the group cleanly."""
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            # kafka-python has no "abandon" call: stop heartbeating and drop the
            # sockets, so the group notices only when the session times out,
            # exactly as with a killed process (no commit, no LeaveGroup).
            consumer._coordinator._close_heartbeat()  # noqa: SLF001
            consumer._closed = True  # noqa: SLF001
            consumer._client.close()  # noqa: SLF001
        producer = self.producer
        if producer is not None and producer is not self._shared_producer:
            self.producer = None
            producer.close(timeout=0)
        self.counters.add("crashes")

    # the batch -----------------------------------------------------------------
    def decode(self, raw_records: list[Any]) -> tuple[list[Received[Event]], list[Any]]:
        """Split a poll into decoded events and dead-letter futures."""
        assert self.producer is not None
        decoded: list[Received[Event]] = []
        dead: list[Any] = []
        for record in raw_records:
            try:
                event = self.decoder(record.topic)(record.value)
            except EventError as exc:
                dead.append(
                    send_to_dlq(
                        self.producer, self.settings, topic=record.topic, reason=str(exc), role=self.role,
                        key=record.key, value=record.value, partition=record.partition, offset=record.offset,
                    )
                )
                self.counters.add("dead_lettered")
                continue
            decoded.append(Received(record.topic, record.partition, record.offset, record.key, event))
        return decoded, dead

    def handle(self, raw_records: list[Any]) -> None:
        decoded, futures = self.decode(raw_records)
        if decoded:
            futures.extend(self.process(decoded))
        if self._crash_requested and not self._crash_after_send:
            raise SimulatedCrash
        self.await_acks(futures)
        if self._crash_requested:
            raise SimulatedCrash
        self.commit(next_offsets(raw_records))
        self.counters.add("consumed", len(raw_records))

    def await_acks(self, futures: list[Any]) -> None:
        """Block until the broker acknowledged every record this batch sent."""
        for future in futures:
            future.get(timeout=60)

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assert self.consumer is not None
        try:
            self.consumer.commit(offsets)
            self.counters.add("commits")
        except (CommitFailedError, KafkaError) as exc:
            # The group rebalanced under us: the new owner reads these records
            # again, which the idempotent work below us tolerates.
            self.counters.add("commit_failures")
            log.info("%s: commit failed (%s); the batch will be redelivered", self.name, exc)
