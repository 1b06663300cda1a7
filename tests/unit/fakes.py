"""In-memory stand-ins for kafka-python's producer and consumer, for the
broker-free tests of the Service lifecycle, the worker pool and the Lab.

They are deliberately small: one log per topic and partition, a group's
committed offsets, and a consumer that holds every partition of its topics
when it is the first member of its group (later members hold none, as a
group with more members than partitions would leave them). What Kafka itself
does (rebalances, transactions, retention) is tested against a real broker
in ``tests/integration``; these fakes only let the orchestration run.
"""

from __future__ import annotations

import threading
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

from kafka import TopicPartition

PARTITIONS = 2


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)
    timestamp: int = 0


class FakeFuture:
    def __init__(self, record: FakeRecord) -> None:
        self.record = record

    def get(self, timeout: float | None = None) -> FakeRecord:
        return self.record

    def add_callback(self, callback: Callable[[Any], None]) -> "FakeFuture":
        callback(self.record)
        return self

    def add_errback(self, _errback: Callable[[BaseException], None]) -> "FakeFuture":
        return self


class FakeBroker:
    """The logs and the committed offsets, shared by every fake client of a test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: dict[TopicPartition, list[FakeRecord]] = defaultdict(list)
        self.committed: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
        self.members: dict[str, list["FakeConsumer"]] = defaultdict(list)
        self.producers: list["FakeProducer"] = []
        self.consumers: list["FakeConsumer"] = []

    def append(self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None) -> FakeRecord:
        partition = zlib.crc32(key) % PARTITIONS if key else 0
        tp = TopicPartition(topic, partition)
        with self.lock:
            record = FakeRecord(topic, partition, len(self.logs[tp]), key, value, list(headers or []))
            self.logs[tp].append(record)
        return record

    def records(self, topic: str) -> list[FakeRecord]:
        with self.lock:
            return [r for tp, log in self.logs.items() if tp.topic == topic for r in log]

    # the factories the tests install in place of orderlab.clients'
    def make_producer(self, settings: Any, **config: Any) -> "FakeProducer":
        producer = FakeProducer(self, config)
        self.producers.append(producer)
        return producer

    def make_consumer(self, settings: Any, group_id: str | None, *topics: str, **config: Any) -> "FakeConsumer":
        consumer = FakeConsumer(self, group_id, topics)
        self.consumers.append(consumer)
        return consumer


class FakeProducer:
    def __init__(self, broker: FakeBroker, config: dict[str, Any]) -> None:
        self.broker = broker
        self.config = {"linger_ms": config.get("linger_ms", 0)}
        self.closed = False

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, headers: list | None = None) -> FakeFuture:
        if self.closed:
            raise RuntimeError("send on a closed FakeProducer")
        return FakeFuture(self.broker.append(topic, key, value, headers))

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class FakeConsumer:
    def __init__(self, broker: FakeBroker, group_id: str | None, topics: tuple[str, ...]) -> None:
        self.broker = broker
        self.group_id = group_id
        self.topics = topics
        self.closed = False
        self.positions: dict[TopicPartition, int] = {}
        self.config = {"max_poll_records": 100}  # what a poll returns at most, per partition here
        # what orderlab.services.faults.abandon reaches into, as on a real KafkaConsumer
        self._coordinator = SimpleNamespace(_close_heartbeat=lambda: None)
        self._client = SimpleNamespace(close=self.close)
        if group_id is not None:
            broker.members[group_id].append(self)

    def _is_leader(self) -> bool:
        members = [m for m in self.broker.members[str(self.group_id)] if not m.closed]
        return bool(members) and members[0] is self

    def assignment(self) -> set[TopicPartition]:
        if self.closed or not self._is_leader():
            return set()
        return {TopicPartition(topic, p) for topic in self.topics for p in range(PARTITIONS)}

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[FakeRecord]]:
        found: dict[TopicPartition, list[FakeRecord]] = {}
        with self.broker.lock:
            for tp in sorted(self.assignment()):
                start = self.positions.get(tp, self.broker.committed[str(self.group_id)].get(tp, 0))
                batch = self.broker.logs[tp][start:start + (max_records or self.config["max_poll_records"])]
                if batch:
                    found[tp] = batch
                    self.positions[tp] = start + len(batch)
        if not found:
            threading.Event().wait(min(timeout_ms, 20) / 1000)
        return found

    def commit_async(self, offsets: dict[TopicPartition, Any], callback: Callable[[Any, Any], None] | None = None) -> None:
        self.commit(offsets)
        if callback is not None:
            callback(offsets, None)

    def commit(self, offsets: dict[TopicPartition, Any] | None = None, timeout_ms: int | None = None) -> None:
        with self.broker.lock:
            for tp, meta in (offsets or {}).items():
                self.broker.committed[str(self.group_id)][tp] = meta.offset

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def close(self, autocommit: bool = False) -> None:
        self.closed = True


def install(monkeypatch: Any) -> FakeBroker:
    """Put a FakeBroker's factories where orderlab's roles and Lab make their clients; no broker is contacted."""
    broker = FakeBroker()
    for module in ("orderlab.services.consumer", "orderlab.services.transactions", "orderlab.lab"):
        monkeypatch.setattr(f"{module}.make_reply_producer", broker.make_producer)
    for module in ("orderlab.services.orders", "orderlab.lab"):
        monkeypatch.setattr(f"{module}.make_producer", broker.make_producer)
    monkeypatch.setattr("orderlab.services.consumer.make_consumer", broker.make_consumer)
    monkeypatch.setattr("orderlab.lab.check_broker", lambda settings: None)
    monkeypatch.setattr("orderlab.lab.topic_admin.ensure_topics", lambda settings: {})
    return broker
