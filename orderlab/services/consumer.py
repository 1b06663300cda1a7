"""Consumer roles: poll a batch, do the work, wait for the output to be
acknowledged, then commit. That order is what makes delivery at-least-once:
a crash before the commit means the batch is read again, never lost.

A record that cannot be decoded goes to the dead-letter topic (and its
offset is committed with the rest): the role keeps going.

A batch whose output the broker did not acknowledge (the broker restarting,
a send timing out) is not committed either: the worker seeks back to the
batch's first offsets and does it again after a short back-off, so a role
rides out a broker restart instead of dying with its batch half done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from ..clients import BrokerUnavailable, make_consumer, make_reply_producer
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


def first_offsets(records: Iterable[Any]) -> dict[TopicPartition, int]:
    """Where each partition of ``records`` starts: the offsets to seek to to read them again."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first


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
    # back-off after a batch failed (the broker away): doubles up to the maximum
    retry_backoff_s = 0.2
    max_retry_backoff_s = 2.0
    final_commit_timeout_ms = 5_000

    def __init__(
        self,
        settings: Settings,
        *,
        producer: KafkaProducer | None = None,
        name: str | None = None,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(settings, name=name)
        self._shared_producer = producer
        self.producer: KafkaProducer | None = producer
        self.consumer: KafkaConsumer | None = None
        # extra kafka-python consumer settings, e.g. a short session_timeout_ms
        # so that a crashed worker's partitions move on quickly (chaos runs)
        self.consumer_config = dict(consumer_config or {})
        self._crash_requested = False
        self._crash_after_send = False
        self._crash_min_records = 1
        self._failures_in_a_row = 0
        self._last_offsets: dict[TopicPartition, OffsetAndMetadata] = {}  # the latest sent to be committed, per partition
        # Partitions held after the last poll: 0 while this member is still
        # joining its group, or has none because the group has more members.
        self.partitions = 0

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
        overrides = {**self.consumer_overrides(), **self.consumer_config}
        self.consumer = make_consumer(self.settings, self.group_id, *self.topics(), **overrides)

    def make_own_producer(self) -> KafkaProducer:
        return make_reply_producer(self.settings)

    def close(self) -> None:
        if self.consumer is not None:
            self._commit_last()
            # autocommit is off: whatever was not committed after its work is read again
            self.consumer.close(autocommit=False)
        if self.producer is not None and self.producer is not self._shared_producer:
            self.producer.close(timeout=5)

    def crash(self, after_send: bool = True, *, min_records: int = 1) -> None:
        """Fault injection: end the worker at its next batch like a killed process.

        With ``after_send`` the batch's output is sent (and acknowledged) but
        its offsets are never committed, which is the window where
        at-least-once delivery produces duplicates. ``min_records`` waits for
        a batch of at least that many records, so the crash loses real work.
        """
        if min_records < 1:
            raise ValueError(f"min_records must be at least 1, got {min_records}")
        self._crash_after_send = after_send
        self._crash_min_records = min_records
        self._crash_requested = True

    def crash_due(self, raw_records: list[Any]) -> bool:
        """Whether the requested crash happens in this batch."""
        return self._crash_requested and len(raw_records) >= self._crash_min_records

    def loop(self) -> None:
        assert self.consumer is not None
        while not self.stopping:
            try:
                polled = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
            except KafkaError as exc:
                self._back_off("poll", exc)
                continue
            self.partitions = len(self.consumer.assignment())
            if not polled:
                self.idle()
                continue
            raw_records = [record for records in polled.values() for record in records]
            try:
                self.handle(raw_records)
            except SimulatedCrash:
                # how much work died with the worker: sent, never committed
                self.counters.add("crash_batch_records", len(raw_records))
                self._die()
                return
            except (KafkaError, BrokerUnavailable) as exc:
                # Not committed: read the batch again. Its side effects are
                # idempotent (the ledger), its output may appear twice
                # (at-least-once) or was aborted with its transaction.
                self.rewind(raw_records)
                self._back_off("batch", exc)
                continue
            self._failures_in_a_row = 0

    def rewind(self, raw_records: list[Any]) -> None:
        """Seek back to the first offset of each partition of a batch that was not committed.

        Partitions taken away by a rebalance meanwhile are left alone: their
        new owner starts from the last committed offset anyway.
        """
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for tp, offset in first_offsets(raw_records).items():
            if tp in assigned:
                try:
                    self.consumer.seek(tp, offset)
                except KafkaError as exc:  # revoked between the two calls
                    log.info("%s: could not seek %s back to %d: %s", self.name, tp, offset, exc)
        self.counters.add("rewinds")

    def _back_off(self, what: str, exc: BaseException) -> None:
        self._failures_in_a_row += 1
        self.counters.add("retries")
        delay = min(self.max_retry_backoff_s, self.retry_backoff_s * 2 ** (self._failures_in_a_row - 1))
        level = logging.WARNING if self._failures_in_a_row == 1 else logging.DEBUG
        log.log(level, "%s: %s failed (%s: %s); retrying in %.1f s", self.name, what, type(exc).__name__, exc, delay)
        self.wait(delay)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "partitions": self.partitions}

    def idle(self) -> None:
        """Called after an empty poll: commit what the consumer skipped past its last record."""
        self._commit_skipped()

    def _commit_skipped(self) -> None:
        """Commit each partition's position where it moved past the last committed offset.

        Only records never given to us lie there: transaction markers and
        aborted records, which ``read_committed`` readers step over on an
        empty poll. Committing "last record + 1" alone stops short of the
        last marker, so a caught-up reader of a transactional topic would
        show a lag of one per partition forever.
        """
        assert self.consumer is not None
        skipped: dict[TopicPartition, OffsetAndMetadata] = {}
        assigned = self.consumer.assignment()
        for tp, last in self._last_offsets.items():
            if tp not in assigned:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=0)
            except KafkaError:
                continue
            if position is not None and position > last.offset:
                skipped[tp] = OffsetAndMetadata(position, "", -1)
        if skipped:
            self.commit(skipped)

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
        crash = self.crash_due(raw_records)
        if crash and not self._crash_after_send:
            raise SimulatedCrash
        self.await_acks(futures)
        if crash:
            raise SimulatedCrash
        self.commit(next_offsets(raw_records))
        self.counters.add("consumed", len(raw_records))

    def await_acks(self, futures: list[Any]) -> None:
        """Block until the broker acknowledged every record this batch sent."""
        for future in futures:
            future.get(timeout=60)

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit a finished batch's offsets without waiting for the answer.

        The batch's work is done and its output acknowledged by now, so
        at-least-once holds whenever the commit lands; a commit that fails
        (the group rebalanced) only means the batch is read again. Not
        waiting saves a round trip per batch, which at a low rate was the
        longest step of a batch and held up the next order. :meth:`close`
        commits the last offsets once more, synchronously, so a role stopped
        cleanly leaves nothing to read again.
        """
        assert self.consumer is not None
        self._last_offsets.update(offsets)
        try:
            self.consumer.commit_async(offsets, callback=self._committed)
        except KafkaError as exc:
            self._commit_failed(exc)

    def _committed(self, _offsets: Any, result: Any) -> None:
        """kafka-python's answer to an asynchronous commit (called on its network thread)."""
        if isinstance(result, BaseException):
            self._commit_failed(result)
        else:
            self.counters.add("commits")

    def _commit_failed(self, exc: BaseException) -> None:
        # The group rebalanced under us: the new owner reads these records
        # again, which the idempotent work below us tolerates.
        self.counters.add("commit_failures")
        log.info("%s: commit failed (%s); the batch will be redelivered", self.name, exc)

    def _commit_last(self) -> None:
        """On a clean stop: wait for the last offsets of the partitions still assigned to be committed."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        last = {tp: offset for tp, offset in self._last_offsets.items() if tp in assigned}
        if not last:
            return
        try:
            self.consumer.commit(last, timeout_ms=self.final_commit_timeout_ms)  # bounded: the broker may be away
        except (CommitFailedError, KafkaError) as exc:
            self._commit_failed(exc)
