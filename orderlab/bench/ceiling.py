"""The ceiling: the pipeline's Kafka work with no application code.

Per order the pipeline produces twice (the order, then its outcome) and
consumes three times (transactions and analytics read the order, e-mail
reads the outcome). Here plain kafka-python clients, made by the same
:mod:`orderlab.clients` factories (so the same acks, idempotence, linger and
fetch settings), do exactly that in one process, one consumer per thread,
with records the size of real orders, and commit after each batch as the
roles do. No decoding, no validation, no ledger, no SMTP: whatever the
pipeline achieves below this figure is the cost of the application.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from kafka import KafkaProducer

from ..clients import make_consumer, make_producer
from ..events import ConfirmedOrder, encode_confirmed, encode_order
from ..generator import OrderFactory
from ..services.records import next_offsets
from ..settings import Settings
from ..topics import ensure_topics
from .cpuclock import CpuClock, per_order_us
from .stats import sustained_rate


@dataclass(frozen=True)
class ThroughputResult:
    """Completions over time for ``orders`` orders, and what they add up to."""

    orders: int
    completed: int
    elapsed_s: float
    orders_per_s: float  # sustained: between 10 % and 90 % done
    timeline: tuple[tuple[float, int], ...]
    notes: tuple[str, ...] = ()  # anything that makes the figure less clean (a rebalance, replays)
    cpu_s: float | None = None  # this process's CPU time (all threads) while the clock ran
    machine_cpu_s: float | None = None  # every process's, the broker and the SMTP helpers too (see cpuclock)

    @property
    def cpu_us_per_order(self) -> float:
        return per_order_us(self.cpu_s, self.completed)

    @property
    def machine_cpu_us_per_order(self) -> float:
        return per_order_us(self.machine_cpu_s, self.completed)

    @property
    def finished(self) -> bool:
        return self.completed >= self.orders


def sample_payloads(count: int, seed: int = 7) -> list[tuple[bytes, bytes, bytes]]:
    """``(key, order value, confirmed value)`` of real orders, made before any clock starts."""
    factory = OrderFactory(seed=seed, customers=50)
    payloads = []
    for _ in range(count):
        order = factory.make()
        payloads.append(
            (order.order_id.encode(), encode_order(order), encode_confirmed(ConfirmedOrder(order, "pay_" + order.order_id[:12], order.created_at)))
        )
    return payloads


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, amount: int) -> None:
        with self._lock:
            self.value += amount


def _consume(settings: Settings, group: str, topic: str, seen: _Counter, ready: threading.Event, stop: threading.Event,
             forward: Callable[[list], list] | None = None) -> None:
    """Poll, (forward and wait for the acks), commit without waiting: the shape of every consumer role."""
    consumer = make_consumer(settings, group, topic)
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=100)
            if consumer.assignment():
                ready.set()
            if not polled:
                continue
            records = [record for batch in polled.values() for record in batch]
            if forward is not None:
                for future in forward(records):
                    future.get(timeout=60)
            consumer.commit_async(next_offsets(records))  # as the roles do (ConsumerService.commit)
            seen.add(len(records))
    finally:
        ready.set()
        consumer.close(autocommit=False)


def run_ceiling(settings: Settings, orders: int, *, relays: int = 2, timeout_s: float = 120.0,
                progress: Callable[[int], None] | None = None) -> ThroughputResult:
    """Push ``orders`` records through produce → relay (consume + produce) → consume, plus a second reader.

    The clock starts once every consumer has its partitions, so group joins
    are not counted (the pipeline's figure leaves its start out as well).
    """
    ensure_topics(settings)
    source, target = settings.order_details_topic, settings.order_confirmed_topic
    relays = max(1, min(relays, settings.order_details_partitions))
    pool = sample_payloads(min(orders, 2000))
    # keys as long as an order id and all different; values cycle through the pool
    records = [(b"%036d" % number, pool[number % len(pool)]) for number in range(orders)]
    outcome_of = {key: payload[2] for key, payload in records}
    producer: KafkaProducer = make_producer(settings)
    stop = threading.Event()
    relayed, outcome_reader, order_reader = _Counter(), _Counter(), _Counter()

    def forward(batch: list) -> list:
        return [producer.send(target, key=record.key, value=outcome_of[record.key]) for record in batch]

    readers = [
        *((settings.group_id("ceiling-relay"), source, relayed, forward) for _ in range(relays)),
        (settings.group_id("ceiling-outcomes"), target, outcome_reader, None),
        (settings.group_id("ceiling-orders"), source, order_reader, None),
    ]
    ready = [threading.Event() for _ in readers]
    threads = [
        threading.Thread(target=_consume, args=(settings, group, topic, seen, flag, stop, relay), name=f"ceiling-{n}", daemon=True)
        for n, ((group, topic, seen, relay), flag) in enumerate(zip(readers, ready))
    ]
    for thread in threads:
        thread.start()

    def produce() -> None:
        for key, payload in records:
            producer.send(source, key=key, value=payload[1])
        producer.flush(timeout=60)

    timeline: list[tuple[float, int]] = [(0.0, 0)]
    source_thread = threading.Thread(target=produce, name="ceiling-source", daemon=True)
    try:
        join_deadline = time.monotonic() + 60
        for flag in ready:
            flag.wait(max(0.0, join_deadline - time.monotonic()))
        started, cpu = time.monotonic(), CpuClock()
        deadline = started + timeout_s
        source_thread.start()
        while True:
            done = min(outcome_reader.value, order_reader.value)
            now = time.monotonic()
            timeline.append((now - started, done))
            if progress is not None:
                progress(done)
            if done >= orders or now >= deadline:
                spent = cpu.read()
                break
            time.sleep(0.05)
    finally:
        stop.set()
        if source_thread.is_alive():
            source_thread.join(10)
        for thread in threads:
            thread.join(15)
        producer.close(timeout=5)
    elapsed = timeline[-1][0]
    return ThroughputResult(orders, timeline[-1][1], elapsed, sustained_rate(timeline, orders), tuple(timeline),
                            cpu_s=spent.process_s, machine_cpu_s=spent.machine_s)
