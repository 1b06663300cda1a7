"""Consumer roles: poll a batch, do the work, wait for the output to be
acknowledged, then commit. That order is what makes delivery at-least-once:
a crash before the commit means the batch is read again, never lost.

A record that cannot be decoded goes to the dead-letter topic (and its
offset is committed with the rest): the role keeps going. So does a record
the client cannot even read (:mod:`orderlab.services.unreadable`): the worker
finds it, dead-letters it and moves its position past it.

A batch whose output the broker did not acknowledge (the broker restarting,
a send timing out) is not committed either: the worker seeks back to the
batch's first offsets and does it again after a short back-off, so a role
rides out a broker restart instead of dying with its batch half done.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, Generic, Mapping

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from ..clients import ROLE_FETCH, BrokerUnavailable, make_consumer, make_reply_producer
from ..settings import Settings
from ..topology import RoleSpec
from .backoff import BackOff
from .base import Service
from .commits import OffsetCommitter
from .faults import CrashInjection, SimulatedCrash
from .intake import Intake
from .outage import broker_connections, report_connections
from .records import Event, Received, first_offsets, next_offsets
from .unreadable import UnreadableRecord, find_unreadable, may_be_a_record

log = logging.getLogger(__name__)


class ConsumerService(CrashInjection, Service, Generic[Event]):
    """A role that consumes the topics its declaration reads, in its group.

    Each topic's records are decoded with the record type declared for it
    (:attr:`ports`); a subclass writes :meth:`process`, which does the work
    for a batch of decoded records and returns the futures of what it sent.

    Extra arguments: ``producer``, one to share (else the role makes its own
    in :meth:`setup`); ``consumer_config``, extra kafka-python consumer
    settings (a short ``session_timeout_ms`` in chaos runs, so that a crashed
    worker's partitions move on quickly).
    """

    poll_timeout_ms = 100
    counter_names = (
        "consumed", "dead_lettered", "unreadable", "commits", "commit_failures", "retries", "rewinds", "crashes",
        "crash_batch_records",
    )  # fmt: skip

    def __init__(self, settings: Settings, spec: RoleSpec, *, producer: KafkaProducer | None = None,
                 consumer_config: Mapping[str, Any] | None = None, **service_options: Any) -> None:
        super().__init__(settings, spec, **service_options)
        self._shared_producer = producer
        self._producer: KafkaProducer | None = producer
        self._consumer: KafkaConsumer | None = None
        self._committer: OffsetCommitter | None = None
        self.consumer_config = dict(consumer_config or {})
        self.backoff = BackOff(self.name, self.counters, self.outage)
        self.intake = Intake(settings, self.ports, self.role, self.counters)
        self._unreadable: list[UnreadableRecord] = []  # found, not yet dead-lettered: retried before the next poll
        # The partitions held after the last poll (none while joining, or with more members than partitions), for
        # other threads: the consumer is not thread-safe; replaced, never changed, so a reader sees one poll's.
        self.partitions = 0
        self.held: frozenset[TopicPartition] = frozenset()

    # what the subclass provides ---------------------------------------------
    @abc.abstractmethod
    def process(self, batch: list[Received[Event]]) -> list[Any]:
        """Do the work for a batch; return the futures of the records sent."""

    def consumer_overrides(self) -> dict[str, Any]:
        """kafka-python consumer settings of this role: fuller fetches (:data:`orderlab.clients.ROLE_FETCH`)
        over the defaults of :func:`orderlab.clients.make_consumer`."""
        return dict(ROLE_FETCH)

    # clients ---------------------------------------------------------------------
    @property
    def group_id(self) -> str:
        """This role's consumer group in this run (orderlab-<role><suffix>)."""
        return str(self.ports.group_id)

    def _made(self, client: Any, what: str) -> Any:
        if client is None:
            raise self.not_started(what)
        return client

    producer = property(lambda self: self._made(self._producer, "producer"),
                        doc="The producer the role sends with (shared, or its own once started).")
    consumer = property(lambda self: self._made(self._consumer, "consumer"),
                        doc="The role's consumer (made in :meth:`setup`, in the role's own thread).")
    committer = property(lambda self: self._made(self._committer, "consumer"),
                         doc="Commits this worker's offsets (see :class:`OffsetCommitter`).")

    # lifecycle -----------------------------------------------------------------
    def setup(self) -> None:
        """Make the consumer (subscribed to the role's topics) and, unless one is shared, a producer."""
        if self._producer is None:
            self._producer = self.make_own_producer()
        self._make_consumer()
        self.intake.start_reading(self.ports.group_id or self.name)

    def _make_consumer(self) -> None:
        overrides = {**self.consumer_overrides(), **self.consumer_config}
        self._consumer = make_consumer(self.settings, self.group_id, *self.ports.topics, **overrides)
        self._committer = OffsetCommitter(self._consumer, self.counters, self.name)

    def check_broker(self) -> None:
        """No connection to any broker is a symptom of an outage (see :mod:`orderlab.services.outage`)."""
        report_connections(self.outage, self._consumer)

    def make_own_producer(self) -> KafkaProducer:
        """The producer a role makes when none is shared: one that does not linger (see REPLY_LINGER_MS)."""
        return make_reply_producer(self.settings)

    def close(self) -> None:
        """Commit the last offsets (bounded), leave the group, close what the role made."""
        self.intake.stop_reading()
        if self._consumer is not None and self._committer is not None:
            self._committer.commit_last()
            # autocommit is off: whatever was not committed after its work is read again
            self._consumer.close(autocommit=False)
        if self._producer is not None and self._producer is not self._shared_producer:
            self._producer.close(timeout=5)

    def loop(self) -> None:
        """Poll, handle the batch, commit; on a Kafka error read the batch again after a back-off."""
        while not self.stopping:
            raw_records = self._unreadable or self._poll()
            if raw_records is None:
                continue
            if not raw_records and not self.holds_a_batch():
                self.idle()
                continue
            try:
                self.handle(raw_records)
            except SimulatedCrash:
                # how much work died with the worker: sent, never committed
                self.counters.add("crash_batch_records", len(raw_records))
                self.die()
                return
            except (KafkaError, BrokerUnavailable) as exc:
                # Not committed: read the batch again. Its side effects are
                # idempotent (the ledger), its output may appear twice
                # (at-least-once) or was aborted with its transaction.
                # Unreadable records are not read again: their dead letters are sent again.
                if raw_records is not self._unreadable:
                    self.rewind(raw_records)
                self._back_off("batch", exc)
                continue
            if raw_records:  # not after an empty poll that only finished a batch: the poll may have found no broker
                self._unreadable = []
                self.backoff.succeeded()

    def _poll(self) -> list[Any] | None:
        """The records of one poll; None after a failed poll (backed off, or stepped over unreadable records)."""
        consumer = self.consumer
        try:
            polled = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.records_per_poll())
        except Exception as exc:  # noqa: BLE001 - a record the client cannot parse raises anything
            if may_be_a_record(exc):
                return self._step_over_unreadable(exc)
            self._back_off("poll", exc)
            return None
        self.backoff.polled(connected=broker_connections(consumer) != 0)  # None (cannot tell) counts as connected
        self.held = frozenset(consumer.assignment())
        self.partitions = len(self.held)
        return [record for records in polled.values() for record in records]

    def _step_over_unreadable(self, exc: Exception) -> list[Any] | None:
        """Find the records poll() could not read, move past them, return them to be dead-lettered.

        Unmoved, the consumer's next poll() would loop forever inside kafka-python 3.0.12: with none
        found, it is replaced (or the error raised, if not even a Kafka error: a bug shows).
        """
        try:
            found = find_unreadable(self.settings, self.consumer)
        except (KafkaError, BrokerUnavailable):  # the broker, meanwhile: look again after the back-off
            found = []
        if not found:
            if not isinstance(exc, KafkaError):
                raise exc
            self._consumer.close(autocommit=False)  # type: ignore[union-attr]
            self._make_consumer()
            self._back_off("poll", exc)
            return None
        self.seek({tp: meta.offset for tp, meta in next_offsets(found).items()})
        self._unreadable = found
        return found

    def rewind(self, raw_records: list[Any]) -> None:
        """Seek back to the first offset of each partition of a batch that was not committed."""
        self.seek(first_offsets(raw_records))
        self.counters.add("rewinds")

    def seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Move the position on each partition still assigned (a revoked one's new owner starts from its commit)."""
        assigned = self.consumer.assignment()
        for tp, offset in offsets.items():
            if tp in assigned:
                try:
                    self.consumer.seek(tp, offset)
                except (KafkaError, ValueError) as exc:  # revoked between the two calls
                    log.info("%s: could not seek %s to %d: %s", self.name, tp, offset, exc)

    def _back_off(self, what: str, exc: BaseException) -> None:
        self.wait(self.backoff.failed(what, exc))

    def status(self) -> dict[str, Any]:
        """The base status plus the partitions this worker holds."""
        return {**super().status(), "partitions": self.partitions}

    def records_per_poll(self) -> int | None:
        """At most this many records a poll; None: the consumer's ``max_poll_records``. A hook for roles
        whose records take time of their own (see :meth:`TransactionsBackend.records_per_poll`)."""
        return None

    def holds_a_batch(self) -> bool:
        """Whether a batch handled earlier is not finished yet: then an empty poll goes to :meth:`handle`
        (with no records) to finish it, instead of to :meth:`idle`. A hook for a role that overlaps a
        batch's work with reading the next (:class:`~orderlab.services.email.EmailNotifier`)."""
        return False

    def idle(self) -> None:
        """Called after an empty poll: commit what the consumer skipped past its last record."""
        self.committer.commit_skipped()

    # the batch -----------------------------------------------------------------
    def decode(self, raw_records: list[Any]) -> tuple[list[Received[Event]], list[Any]]:
        """Split a poll into decoded events and dead-letter futures (see :mod:`orderlab.services.intake`)."""
        return self.intake.decode(raw_records, self.producer)

    def handle(self, raw_records: list[Any]) -> None:
        """Decode, process, wait for every ack, then commit the batch's offsets: at-least-once."""
        decoded, futures = self.decode(raw_records)
        if decoded:
            futures.extend(self.process(decoded))
        self.finish(raw_records, futures)

    def finish(self, raw_records: list[Any], futures: list[Any]) -> None:
        """A batch's work is done: wait for its output's acks, then commit its offsets (and a crash, if due)."""
        crash = self.crash_due(raw_records)
        if crash and not self.crash_after_send:
            raise SimulatedCrash
        self.await_acks(futures)
        if crash:
            self.crash_now(raw_records)
        self.committer.commit(next_offsets(raw_records))
        self.counters.add("consumed", len(raw_records))

    def await_acks(self, futures: list[Any]) -> None:
        """Block until the broker acknowledged every record this batch sent."""
        for future in futures:
            future.get(timeout=60)
