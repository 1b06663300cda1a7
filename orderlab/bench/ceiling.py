"""The ceiling: the pipeline's Kafka work with no application code.

Per order the pipeline produces twice (the order, then its outcome on
order_confirmed or order_declined) and consumes four times: transactions
and analytics read the order, analytics reads the outcome, and e-mail reads
it when it is a confirmation. Here plain kafka-python clients, made by the
same :mod:`orderlab.clients` factories (so the same acks, idempotence,
linger and fetch settings), do exactly that in one process, one consumer per
thread, with records the size of real orders routed as the payment rules
route them, and commit after each batch as the roles do. No decoding, no
validation, no ledger, no SMTP: whatever the pipeline achieves below this
figure is the cost of the application. :data:`READS` is the seed
topology's reads, role by role.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kafka import KafkaProducer

from .. import collector
from ..clients import ROLE_FETCH, make_consumer, make_producer
from ..events import ConfirmedOrder, DeclinedOrder, encode_confirmed, encode_declined, encode_order
from ..generator import OrderFactory
from ..payments import PaymentRules, decide_payment
from ..seed import SEED
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


# what each consuming role of the seed topology reads: the relay stands for transactions
READS: dict[str, tuple[str, ...]] = {spec.name: tuple(read.topic for read in spec.reads) for spec in SEED.consumers()}


@dataclass(frozen=True)
class SamplePayload:
    """One real order's records, made before any clock starts: its key, the order, and its outcome."""

    key: bytes
    order: bytes
    confirmed: bool
    outcome: bytes


def sample_payloads(count: int, seed: int = 7) -> list[SamplePayload]:
    """Real orders and their outcomes, decided by the default payment rules (so as many are declined)."""
    factory = OrderFactory(seed=seed, customers=50)
    rules, rng = PaymentRules(), random.Random(seed)
    payloads = []
    for _ in range(count):
        order = factory.make()
        result = decide_payment(order, rules, rng, now=order.created_at)
        outcome = (encode_confirmed(ConfirmedOrder(order, result.payment_id, result.processed_at)) if result.approved
                   else encode_declined(DeclinedOrder(order, result.reason, result.processed_at)))
        payloads.append(SamplePayload(order.order_id.encode(), encode_order(order), result.approved, outcome))
    return payloads


class _TopicCounts:
    """Records read, by topic: one reader thread adds, the clock's loop reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, records: list) -> None:
        with self._lock:
            for record in records:
                self._counts[record.topic] = self._counts.get(record.topic, 0) + 1

    def __getitem__(self, topic: str) -> int:
        with self._lock:
            return self._counts.get(topic, 0)


def _consume(settings: Settings, group: str, topics: tuple[str, ...], seen: _TopicCounts, ready: threading.Event,
             stop: threading.Event, forward: Callable[[list], list] | None = None) -> None:
    """Poll, (forward and wait for the acks), commit without waiting: the shape of every consumer role."""
    consumer = make_consumer(settings, group, *topics, **ROLE_FETCH)  # as the roles fetch
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
            seen.add(records)
    finally:
        ready.set()
        consumer.close(autocommit=False)


# the process runs as it does for the roles (the Lab's garbage collector settings), so
# that the two compare the Kafka work, not two runtimes
@collector.roles_running()
def run_ceiling(settings: Settings, orders: int, *, relays: int = 2, timeout_s: float = 120.0,
                progress: Callable[[int], None] | None = None) -> ThroughputResult:
    """Push ``orders`` records through produce → relay (consume + produce) → the readers of :data:`READS`.

    An order is done once its outcome has been read by the analytics reader
    and, if a confirmation, by the e-mail reader. The clock starts once
    every consumer has its partitions, so group joins are not counted (the
    pipeline's figure leaves its start out as well).
    """
    ensure_topics(settings)
    topic = {"order_details": settings.order_details_topic, "order_confirmed": settings.order_confirmed_topic,
             "order_declined": settings.order_declined_topic}
    relays = max(1, min(relays, settings.order_details_partitions))
    pool = sample_payloads(min(orders, 2000))
    # keys as long as an order id and all different; values cycle through the pool
    records = [(b"%036d" % number, pool[number % len(pool)]) for number in range(orders)]
    outcome_of = {key: payload for key, payload in records}
    producer: KafkaProducer = make_producer(settings)
    stop = threading.Event()
    relayed, emailed, analysed = _TopicCounts(), _TopicCounts(), _TopicCounts()

    def forward(batch: list) -> list:
        futures = []
        for record in batch:
            payload = outcome_of[record.key]
            outcome_topic = topic["order_confirmed" if payload.confirmed else "order_declined"]
            futures.append(producer.send(outcome_topic, key=record.key, value=payload.outcome))
        return futures

    def reads(role: str) -> tuple[str, ...]:
        return tuple(topic[name] for name in READS[role])

    readers = [
        *((settings.group_id("ceiling-transactions"), reads("transactions"), relayed, forward) for _ in range(relays)),
        (settings.group_id("ceiling-email"), reads("email"), emailed, None),
        (settings.group_id("ceiling-analytics"), reads("analytics"), analysed, None),
    ]
    ready = [threading.Event() for _ in readers]
    threads = [
        threading.Thread(target=_consume, args=(settings, group, topics, seen, flag, stop, relay),
                         name=f"ceiling-{n}", daemon=True)
        for n, ((group, topics, seen, relay), flag) in enumerate(zip(readers, ready))
    ]
    for thread in threads:
        thread.start()

    def produce() -> None:
        for key, payload in records:
            producer.send(topic["order_details"], key=key, value=payload.order)
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
            # as the pipeline counts: the outcome read by analytics and, for a confirmation, by e-mail
            declined = analysed[topic["order_declined"]]
            done = min(analysed[topic["order_confirmed"]] + declined, emailed[topic["order_confirmed"]] + declined)
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
