"""Issue 14, "the exactly-once loss": a commit kafka-python reported done, which the broker had aborted.

No broker here. The producer is kafka-python 3.0.12's own TransactionManager,
answered the way its Sender thread answers it, by a fake broker that keeps
what was committed. One transaction's send fails with
OUT_OF_ORDER_SEQUENCE_NUMBER, as after a broker restart: kafka-python bumps the
producer epoch on its own (the broker aborts the transaction when it grants
the bump) and, when the commit was already waiting for that send, reports
the commit as done. The worker must notice and do the batch again.

Also here: the group membership sent with the offsets is the poll's, so
that the broker can refuse a replaced worker's commit (the duplicates seen
in the same repeats).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.errors import KafkaError, OutOfOrderSequenceNumberError
from kafka.producer.transaction_manager import (
    AddOffsetsToTxnHandler,
    AddPartitionsToTxnHandler,
    EndTxnHandler,
    InitProducerIdHandler,
    TransactionManager,
    TxnOffsetCommitHandler,
)
from kafka.structs import ConsumerGroupMetadata, TopicPartition

from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.kafka_compat import transaction_ended_by_client, transaction_epoch
from orderlab.ledger import Ledger
from orderlab.seed import SEED
from orderlab.services import PaymentControls, TransactionsBackend
from orderlab.services.commits import OffsetCommitter
from orderlab.services.transactions import NotInGroup
from orderlab.settings import Settings

PRODUCER_ID = 4000


class SendFuture:
    """What ``KafkaProducer.send`` returns; waiting for it lets the sender get the broker's answer."""

    def __init__(self, producer: "KafkaPythonTransactionalProducer") -> None:
        self.producer = producer
        self.exception: BaseException | None = None
        self.is_done = False

    def get(self, timeout: float | None = None) -> None:
        if not self.is_done:
            self.producer.flush()
        if self.exception is not None:
            raise self.exception


class FakeBroker:
    """Keeps what committed transactions wrote: the outcome keys and the group's offsets."""

    def __init__(self) -> None:
        self.epoch = -1
        self.open_records: list[bytes] = []
        self.open_offsets: dict[TopicPartition, int] = {}
        self.committed_records: list[bytes] = []
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.aborted_records: list[bytes] = []
        self.bumps = 0

    def abort(self) -> None:
        self.aborted_records += self.open_records
        self.open_records, self.open_offsets = [], {}

    def commit(self) -> None:
        self.committed_records += self.open_records
        self.committed_offsets.update(self.open_offsets)
        self.open_records, self.open_offsets = [], {}


class KafkaPythonTransactionalProducer:
    """kafka-python's TransactionManager without a network: the calls KafkaProducer makes, the answers a broker gives.

    ``out_of_order_in`` names the transaction (1, 2, ...) whose first send
    the broker refuses with OUT_OF_ORDER_SEQUENCE_NUMBER; the sender then does
    what kafka-python 3.0.12's ``Sender._dispatch_error`` does: bump the epoch
    and fail that send. The transaction's later sends stay in the buffer,
    and go out in the next transaction, as kafka-python's accumulator does.
    """

    def __init__(self, broker: FakeBroker, out_of_order_in: int | None = None) -> None:
        self.broker = broker
        self.out_of_order_in = out_of_order_in
        self.transactions = 0
        self.in_flight: list[tuple[bytes, SendFuture]] = []
        self.left_over: list[tuple[bytes, SendFuture]] = []  # unsent records of a transaction the bump ended
        self.closed = False
        self._transaction_manager = TransactionManager(
            transactional_id="orderlab-transactions-0", transaction_timeout_ms=15_000, api_version=(4, 0)
        )
        self._wait(self._transaction_manager.initialize_transactions())

    # what KafkaProducer does --------------------------------------------------
    def begin_transaction(self) -> None:
        self._transaction_manager.begin_transaction()
        self.transactions += 1

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> SendFuture:
        assert key is not None
        self._transaction_manager.maybe_add_partition_to_transaction(TopicPartition(topic, 0))
        self._run_sender()  # AddPartitionsToTxn goes before the records
        self.in_flight += self.left_over  # the partition is in a transaction again: the buffer drains
        self.left_over = []
        future = SendFuture(self)
        self.in_flight.append((key, future))
        return future

    def flush(self) -> None:
        self._answer_sends()
        self._run_sender()  # e.g. the epoch bump a refused send asked for

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group: ConsumerGroupMetadata) -> None:
        self.last_group = group
        self._wait(self._transaction_manager.send_offsets_to_transaction(offsets, group), offsets)

    def commit_transaction(self) -> None:
        self._wait(self._transaction_manager.begin_commit())

    def abort_transaction(self) -> None:
        self._wait(self._transaction_manager.begin_abort())

    def close(self, timeout: float | None = None) -> None:
        for _key, future in self.left_over + self.in_flight:
            future.exception, future.is_done = KafkaError("producer closed"), True
        self.left_over, self.in_flight, self.closed = [], [], True

    # what its Sender thread and the broker do -----------------------------------
    def _wait(self, result: Any, offsets: dict[TopicPartition, Any] | None = None) -> None:
        self._run_sender(offsets)
        assert result.is_done
        result.wait()

    def _answer_sends(self) -> None:
        if self.in_flight and self.transactions == self.out_of_order_in:
            self.out_of_order_in = None
            _key, future = self.in_flight.pop(0)
            self._transaction_manager.bump_producer_id_and_epoch()  # Sender._dispatch_error, NEEDS_EPOCH_BUMP
            future.exception, future.is_done = OutOfOrderSequenceNumberError(), True
            self.left_over, self.in_flight = self.in_flight, []
            return
        for key, future in self.in_flight:
            self.broker.open_records.append(key)
            future.is_done = True
        self.in_flight = []

    def _run_sender(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        manager = self._transaction_manager
        while True:
            if self.in_flight and manager.is_completing():
                self._answer_sends()  # EndTxn waits until the sends are answered
            try:
                handler = manager.next_request_handler(bool(self.in_flight))
            except KafkaError:
                # kafka-python's Sender logs this ("Uncaught error in kafka producer
                # I/O thread") and goes on: READY -> READY after it skipped the EndTxn
                logging.getLogger(__name__).exception("sender thread")
                continue
            if handler is None:
                return
            if isinstance(handler, InitProducerIdHandler):
                # a bump, or a new producer with the id: the broker aborts the open transaction
                self.broker.abort()
                self.broker.bumps += handler.request.producer_epoch >= 0
                self.broker.epoch += 1
                handler.handle_response(SimpleNamespace(error_code=0, producer_id=PRODUCER_ID, producer_epoch=self.broker.epoch))
            elif isinstance(handler, AddPartitionsToTxnHandler):
                topics = [(t.name, [(p, 0) for p in t.partitions]) for t in handler.request.v3_and_below_topics]
                handler.handle_response(SimpleNamespace(results_by_topic_v3_and_below=topics))
            elif isinstance(handler, AddOffsetsToTxnHandler):
                handler.handle_response(SimpleNamespace(error_code=0))
            elif isinstance(handler, TxnOffsetCommitHandler):
                assert offsets is not None
                self.broker.open_offsets.update({tp: o.offset for tp, o in offsets.items()})
                by_topic: dict[str, list[tuple[int, int]]] = {}
                for tp in offsets:
                    by_topic.setdefault(tp.topic, []).append((tp.partition, 0))
                handler.handle_response(SimpleNamespace(topics=list(by_topic.items())))
            elif isinstance(handler, EndTxnHandler):
                assert handler.request.producer_epoch == self.broker.epoch
                self.broker.commit() if handler.request.committed else self.broker.abort()
                handler.handle_response(SimpleNamespace(error_code=0))
            else:  # pragma: no cover - a request this fake does not know
                raise AssertionError(f"unexpected request {handler.request}")


class FakeConsumer:
    """One partition of order_details: poll from the position, seek back, the group's metadata."""

    def __init__(self, records: list[Any], generation: int = 3) -> None:
        self.records = records
        self.tp = TopicPartition(records[0].topic, 0)
        self.position = 0
        self.generation = generation

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        batch = self.records[self.position:]
        self.position = len(self.records)
        return {self.tp: batch} if batch else {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    def group_metadata(self) -> ConsumerGroupMetadata:
        return ConsumerGroupMetadata("orderlab-transactions", self.generation, "member-1" if self.generation >= 0 else "")


def order_records(count: int, topic: str) -> list[Any]:
    factory = OrderFactory(seed=14, customers=5)
    orders = [factory.make() for _ in range(count)]
    return [
        SimpleNamespace(topic=topic, partition=0, offset=n, key=order.order_id.encode(), value=encode_order(order))
        for n, order in enumerate(orders)
    ]


def worker_with(producer: Any, consumer: FakeConsumer, tmp_path: Path) -> TransactionsBackend:
    settings = Settings(exactly_once=True)
    worker = TransactionsBackend(settings, SEED.role("transactions"), ledger=Ledger(str(tmp_path / "ledger.db")),
                                 controls=PaymentControls(0.3), seed=1)
    worker._producer, worker._consumer = producer, consumer  # noqa: SLF001 - what setup() would have made
    worker._committer = OffsetCommitter(consumer, worker.counters, worker.name)  # noqa: SLF001
    worker.make_own_producer = lambda: KafkaPythonTransactionalProducer(producer.broker)  # type: ignore[method-assign]
    worker.backoff.first_s = 0.0
    return worker


def run_until_caught_up(worker: TransactionsBackend, consumer: FakeConsumer, polls: int = 5) -> None:
    """The worker's own loop (poll, handle, rewind on error), until its consumer has nothing left."""
    real_poll = consumer.poll

    def poll(timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        nonlocal polls
        polls -= 1
        polled = real_poll(timeout_ms)
        if not polled or polls <= 0:
            worker._stop_event.set()  # noqa: SLF001 - end the loop after this poll
        return polled

    consumer.poll = poll  # type: ignore[method-assign]
    worker.loop()


def test_kafka_python_reports_a_commit_done_that_an_epoch_bump_aborted() -> None:
    """The library behaviour the worker must not trust (if a kafka-python release fixes it, the guard is moot)."""
    broker = FakeBroker()
    producer = KafkaPythonTransactionalProducer(broker, out_of_order_in=1)
    producer.begin_transaction()
    epoch = transaction_epoch(producer)
    future = producer.send("order_confirmed", key=b"order-1")
    producer.commit_transaction()  # returns: "committed"
    with pytest.raises(OutOfOrderSequenceNumberError):
        future.get()
    assert broker.committed_records == [] and broker.aborted_records == [] and broker.bumps == 1
    assert transaction_epoch(producer) == (PRODUCER_ID, 1) != epoch
    assert transaction_ended_by_client(producer)


def test_a_batch_whose_commit_the_broker_aborted_is_done_again(tmp_path: Path) -> None:
    records = order_records(5, "order_details")
    broker = FakeBroker()
    producer = KafkaPythonTransactionalProducer(broker, out_of_order_in=1)
    consumer = FakeConsumer(records)
    worker = worker_with(producer, consumer, tmp_path)
    run_until_caught_up(worker, consumer)
    keys = sorted(record.key for record in records)
    assert sorted(broker.committed_records) == keys  # every order has its outcome, once
    assert broker.committed_offsets == {consumer.tp: len(records)}
    assert worker.counters["commits"] == 1 and worker.counters["rewinds"] == 1
    # replaced, so that the refused transaction's unsent records never go out; not counted as fenced
    assert producer.closed and worker.producer is not producer and worker.counters["producer_renewals"] == 1
    assert worker.error is None and worker._renewed_at is None  # noqa: SLF001


def test_a_commit_whose_epoch_changed_is_not_trusted(tmp_path: Path) -> None:
    """Even with every send acknowledged: a commit after which the epoch differs was not the commit it claims."""
    records = order_records(3, "order_details")
    broker = FakeBroker()
    producer = KafkaPythonTransactionalProducer(broker)
    manager = producer._transaction_manager  # noqa: SLF001

    def commit_then_bump() -> None:
        result = manager.begin_commit()
        if producer.transactions == 1:
            manager.bump_producer_id_and_epoch()  # whatever the cause: the broker aborts the transaction
        producer._wait(result)  # noqa: SLF001

    producer.commit_transaction = commit_then_bump  # type: ignore[method-assign]
    consumer = FakeConsumer(records)
    worker = worker_with(producer, consumer, tmp_path)
    run_until_caught_up(worker, consumer)
    assert sorted(broker.committed_records) == sorted(r.key for r in records)
    assert worker.counters["commits"] == 1 and worker.counters["rewinds"] == 1


def test_offsets_go_with_the_membership_of_the_poll(tmp_path: Path) -> None:
    """Fell out of the group before the poll: nothing is done. Falls out during the batch: the poll's generation is sent."""
    records = order_records(2, "order_details")
    producer = KafkaPythonTransactionalProducer(FakeBroker())
    consumer = FakeConsumer(records, generation=-1)
    worker = worker_with(producer, consumer, tmp_path)
    with pytest.raises(NotInGroup):
        worker.handle(records)
    assert producer.transactions == 0
    consumer.generation = 3
    real_process = worker.process

    def process_and_fall_out(batch: list[Any]) -> list[Any]:
        consumer.generation = -1  # the heartbeat thread reset the membership meanwhile
        return real_process(batch)

    worker.process = process_and_fall_out  # type: ignore[method-assign]
    worker.handle(records)
    assert producer.last_group.generation_id == 3 and producer.last_group.member_id == "member-1"

