"""Transactions Backend: consume ``order_details``, take payment, produce
``order_confirmed`` or ``order_declined``.

Charging is idempotent by order id (the ledger), so a record read twice after
a crash charges once. With ``exactly_once`` on, the outputs and the consumed
offsets go into one Kafka transaction, so downstream readers (in
``read_committed``) never see the output of a batch whose offsets were not
committed.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable

from kafka import KafkaProducer

from ..clients import make_producer
from ..events import ConfirmedOrder, DeclinedOrder, Order, decode_order, encode_confirmed, encode_declined
from ..ledger import Ledger
from ..payments import PaymentRules, decide_payment
from ..settings import Settings
from .consumer import ConsumerService, Received, SimulatedCrash, next_offsets


class PaymentControls:
    """Knobs shared by every worker, changeable while they run (sliders)."""

    def __init__(self, decline_probability: float = 0.1, latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._rules = PaymentRules(decline_probability)
        self.latency_ms = latency_ms

    @property
    def rules(self) -> PaymentRules:
        return self._rules

    def set_decline_probability(self, probability: float) -> None:
        with self._lock:
            self._rules = PaymentRules(probability, self._rules.card_limit_cents)

    @property
    def latency_ms(self) -> float:
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"payment latency must be >= 0 ms, got {value}")
        self._latency_ms = float(value)


class TransactionsBackend(ConsumerService[Order]):
    role = "transactions"
    counter_names = ("consumed", "confirmed", "declined", "replayed", "dead_lettered", "commits", "commit_failures", "crashes", "aborted")

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        controls: PaymentControls | None = None,
        worker: int = 0,
        producer: KafkaProducer | None = None,
        seed: int | None = None,
    ) -> None:
        # exactly-once needs a transactional producer of the worker's own
        super().__init__(settings, producer=None if settings.exactly_once else producer, name=f"transactions-{worker}")
        self.ledger = ledger
        self.controls = controls or PaymentControls()
        self.worker = worker
        self._rng = random.Random(seed)

    def topics(self) -> tuple[str, ...]:
        return (self.settings.order_details_topic,)

    def decoder(self, topic: str) -> Callable[[bytes | None], Order]:
        return decode_order

    def make_own_producer(self) -> KafkaProducer:
        if not self.settings.exactly_once:
            return make_producer(self.settings)
        # A stable id per worker slot: a replacement for a crashed worker
        # fences the old one and aborts its open transaction at once.
        producer = make_producer(
            self.settings,
            transactional_id=f"{self.settings.group_id(self.role)}-{self.worker}",
            transaction_timeout_ms=15_000,
        )
        producer.init_transactions()
        return producer

    # -- the work ---------------------------------------------------------------
    def decide(self, order: Order) -> Any:
        latency_s = self.controls.latency_ms / 1000.0
        if latency_s > 0:
            self.wait(latency_s)  # the card network's answer takes this long
        return decide_payment(order, self.controls.rules, self._rng)

    def process(self, batch: list[Received[Order]]) -> list[Any]:
        assert self.producer is not None
        settled = self.ledger.settle((received.event for received in batch), self.decide)
        futures = []
        for received, (result, replayed) in zip(batch, settled):
            order = received.event
            if replayed:
                self.counters.add("replayed")
            if result.approved:
                value = encode_confirmed(ConfirmedOrder(order, result.payment_id, result.processed_at))
                futures.append(self.producer.send(self.settings.order_confirmed_topic, key=received.key, value=value))
                self.counters.add("confirmed")
            else:
                value = encode_declined(DeclinedOrder(order, result.reason, result.processed_at))
                futures.append(self.producer.send(self.settings.order_declined_topic, key=received.key, value=value))
                self.counters.add("declined")
        return futures

    def handle(self, raw_records: list[Any]) -> None:
        if not self.settings.exactly_once:
            super().handle(raw_records)
            return
        assert self.producer is not None and self.consumer is not None
        self.producer.begin_transaction()
        try:
            decoded, futures = self.decode(raw_records)
            if decoded:
                futures.extend(self.process(decoded))
            if self._crash_requested:
                self.producer.flush()  # the output reaches the log, uncommitted
                raise SimulatedCrash
            self.producer.send_offsets_to_transaction(next_offsets(raw_records), self.consumer.group_metadata())
            self.producer.commit_transaction()
        except SimulatedCrash:
            raise
        except Exception:
            self.counters.add("aborted")
            self.producer.abort_transaction()
            # read the batch again: its outputs were thrown away with the transaction
            for tp, offset in _first_offsets(raw_records).items():
                self.consumer.seek(tp, offset)
            raise
        self.counters.add("commits")
        self.counters.add("consumed", len(raw_records))


def _first_offsets(records: list[Any]) -> dict[Any, int]:
    from kafka import TopicPartition

    first: dict[Any, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first
