"""Transactions Backend: consume ``order_details``, take payment, produce
``order_confirmed`` or ``order_declined``.

Charging is idempotent by order id (the ledger), so a record read twice after
a crash charges once. With ``exactly_once`` on, the outputs and the consumed
offsets go into one Kafka transaction, so downstream readers (in
``read_committed``) never see the output of a batch whose offsets were not
committed.

Failure handling in exactly-once mode: any error inside a transaction aborts
it (its records become invisible to ``read_committed`` readers) and the batch
is read again (see :meth:`ConsumerService.rewind`). A fenced producer is
replaced once; a worker fenced again soon after stops with
:class:`WorkerFenced` (see :meth:`TransactionsBackend._abort`).

A commit is trusted only when every record of the transaction was
acknowledged before it and the producer's epoch did not change during it:
kafka-python 3.0.12 can report a commit as done when it had bumped the
epoch after a failed send, which aborted the transaction on the broker
(see :mod:`orderlab.kafka_compat`). Trusting that commit lost the batch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ..clients import make_reply_producer
from ..events import ConfirmedOrder, DeclinedOrder, Order, encode_confirmed, encode_declined
from ..kafka_compat import discard, transaction_ended_by_client, transaction_epoch
from ..ledger import Ledger
from ..payments import PaymentRules, decide_payment
from ..settings import Settings
from ..topology import RoleSpec
from .consumer import ConsumerService
from .faults import SimulatedCrash
from .records import Received, next_offsets

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 15_000
FENCED_AGAIN_WINDOW_S = 60.0
BATCH_BUDGET_S = 1.0  # with a simulated card network latency, a batch takes about this long (records_per_poll)


class WorkerFenced(RuntimeError):
    """A transactional worker can no longer abort: another one took over its transactional id."""


class TransactionLost(KafkaError):
    """kafka-python said the transaction committed, but its epoch changed under it: the broker aborted it."""


class NotInGroup(KafkaError):
    """The consumer fell out of its group after the poll: offsets committed now could not be fenced."""


class PaymentControls:
    """Knobs shared by every worker, changeable while they run (sliders)."""

    def __init__(self, decline_probability: float = 0.1, latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._rules = PaymentRules(decline_probability)
        self.latency_ms = latency_ms

    @property
    def rules(self) -> PaymentRules:
        """The payment rules every worker applies now."""
        return self._rules

    def set_decline_probability(self, probability: float) -> None:
        """Change the share of declined payments, for every worker at once."""
        with self._lock:
            self._rules = PaymentRules(probability, self._rules.card_limit_cents)

    @property
    def latency_ms(self) -> float:
        """How long each simulated card-network answer takes, in milliseconds."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        """Set the payment latency (milliseconds, at least 0)."""
        if value < 0:
            raise ValueError(f"payment latency must be >= 0 ms, got {value}")
        self._latency_ms = float(value)


class TransactionsBackend(ConsumerService[Order]):
    """Takes payment for each order it reads and writes the outcome.

    Extra arguments: ``ledger`` (payments are idempotent by order id through
    it); ``controls``, the decline probability and payment latency, shared by
    every worker; ``seed`` for the payment simulation's random numbers.
    """

    # how long the broker lets a transaction stay open before aborting it (a
    # crashed worker without a replacement blocks read_committed readers this long)
    transaction_timeout_ms = TRANSACTION_TIMEOUT_MS
    counter_names = ("confirmed", "declined", "replayed", "aborted", "producer_renewals")

    def __init__(
        self,
        settings: Settings,
        spec: RoleSpec,
        *,
        ledger: Ledger,
        controls: PaymentControls | None = None,
        producer: KafkaProducer | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("name", f"{spec.name}-{options.get('worker', 0)}")
        # exactly-once needs a transactional producer of the worker's own
        super().__init__(settings, spec, producer=None if settings.exactly_once else producer, **options)
        self.ledger = ledger
        self.controls = controls or PaymentControls()
        self._rng = random.Random(seed)
        self._renewed_at: float | None = None  # when the producer was last replaced after being fenced
        self._confirmed_topic = self.ports.output("order_confirmed")
        self._declined_topic = self.ports.output("order_declined")

    @property
    def transactional_id(self) -> str | None:
        """A stable id per worker slot (exactly-once only), and per process when there are several.

        A replacement for a crashed worker uses the same id, which fences the
        old producer and aborts its open transaction at once, instead of
        after the transaction timeout. In process mode the process's instance
        name is part of it: Kafka lets only the newest producer of an id
        live, and two processes that both number their workers from 0 would
        otherwise fence each other's worker 0 in turn.
        """
        if not self.settings.exactly_once:
            return None
        base = f"{self.group_id}-{self.worker}"
        return base if self.instance is None else f"{base}-{self.instance}"

    def make_own_producer(self) -> KafkaProducer:
        """A producer of this worker's own: transactional in exactly-once mode, its transactions initialised."""
        if self.transactional_id is None:
            return make_reply_producer(self.settings)
        producer = make_reply_producer(
            self.settings, transactional_id=self.transactional_id, transaction_timeout_ms=self.transaction_timeout_ms
        )
        try:
            producer.init_transactions()
        except BaseException:
            producer.close(timeout=0)
            raise
        return producer

    def records_per_poll(self) -> int | None:
        """With a simulated card network, as many records as its answers take about :data:`BATCH_BUDGET_S`.

        A worker finishes its batch before it lets go of its partitions in a
        rebalance, so this keeps the workers slider's rebalances about a
        second long whatever the latency, while without latency a batch is
        the consumer's full ``max_poll_records``: a fixed cap of 100 for the
        slider's sake made every batch's fixed costs (the acks, the ledger's
        statements, the commit) five times as frequent, and the transactions
        workers fell behind at 1970 orders/s in a classroom run.
        """
        latency_ms = self.controls.latency_ms
        if latency_ms <= 0:
            return None
        return max(1, min(int(self.consumer.config["max_poll_records"]), int(BATCH_BUDGET_S * 1000 / latency_ms)))

    # -- the work ---------------------------------------------------------------
    def decide(self, order: Order) -> Any:
        """One payment decision, after the simulated card network's latency."""
        latency_s = self.controls.latency_ms / 1000.0
        if latency_s > 0:
            self.wait(latency_s)  # the card network's answer takes this long
        return decide_payment(order, self.controls.rules, self._rng)

    def process(self, batch: list[Received[Order]]) -> list[Any]:
        """Settle the batch in the ledger (once per order id) and send each outcome; returns the send futures."""
        producer = self.producer
        settled = self.ledger.settle((received.event for received in batch), self.decide)
        futures = []
        replayed_count = confirmed_count = 0
        for received, (result, replayed) in zip(batch, settled):
            order = received.event
            replayed_count += replayed
            if result.approved:
                value = encode_confirmed(ConfirmedOrder(order, result.payment_id, result.processed_at))
                futures.append(producer.send(self._confirmed_topic, key=received.key, value=value))
                confirmed_count += 1
            else:
                value = encode_declined(DeclinedOrder(order, result.reason, result.processed_at))
                futures.append(producer.send(self._declined_topic, key=received.key, value=value))
        # counted once a batch, not once an order: each add takes the counters' lock
        if replayed_count:
            self.counters.add("replayed", replayed_count)
        self.counters.add("confirmed", confirmed_count)
        self.counters.add("declined", len(settled) - confirmed_count)
        return futures

    def handle(self, raw_records: list[Any]) -> None:
        """At-least-once: as the base. Exactly-once: the outputs and the offsets in one Kafka transaction;
        any doubt about the commit reads the batch again.

        The group membership is taken as of the poll that returned the
        records: the broker then refuses the offsets of a worker that was
        replaced meanwhile (KIP-447), which it cannot do for a member that
        kafka-python already reset to "no generation".
        """
        if not self.settings.exactly_once:
            super().handle(raw_records)
            return
        group = self.consumer.group_metadata()
        if group.generation_id < 0:
            raise NotInGroup(f"{self.name} is not in group {group.group_id} (rejoining): the batch waits for the new assignment")
        if self._producer is None:  # the last one was fenced: see _abort
            self._producer = self.make_own_producer()
        producer = self._producer
        try:
            producer.begin_transaction()
            epoch = transaction_epoch(producer)
            decoded, futures = self.decode(raw_records)
            if decoded:
                futures.extend(self.process(decoded))
            if self.crash_due(raw_records):
                producer.flush()  # the output reaches the log, in a transaction never committed
                self.crash_now(raw_records)
            # every record acknowledged before the commit: a send that failed
            # aborts the transaction here instead of leaving it to the commit
            self.await_acks(futures)
            producer.send_offsets_to_transaction(next_offsets(raw_records), group)
            producer.commit_transaction()
            if transaction_epoch(producer) != epoch:
                raise TransactionLost(
                    f"{self.name}: the producer epoch went from {epoch} to {transaction_epoch(producer)} "
                    "during the transaction, so the broker aborted it although the commit returned"
                )
        except SimulatedCrash:
            raise
        except BaseException as exc:
            self._abort(exc)
            raise  # a KafkaError makes the loop read the batch again
        self.counters.add("commits")
        self.counters.add("consumed", len(raw_records))

    def _abort(self, cause: BaseException) -> None:
        """Abort the open transaction: its records are never seen by read_committed readers.

        When even the abort fails, the producer was fenced: its epoch was
        bumped, either by the broker aborting a transaction that outlived its
        timeout (the broker was away) or by another producer with the same
        transactional id. The first time, a new producer with the same id
        carries on (and fences any other one); fenced again within
        ``FENCED_AGAIN_WINDOW_S``, another worker really owns the id, and this
        one stops with :class:`WorkerFenced`, so two workers never fence each
        other back and forth. A transaction kafka-python already ended with an
        epoch bump of its own (see :mod:`orderlab.kafka_compat`) is not
        aborted again: its producer is replaced, which is no fencing.
        """
        self.counters.add("aborted")
        if transaction_ended_by_client(self.producer):
            # kafka-python bumped the epoch after a failed send, which aborted
            # the transaction on the broker. Not a fencing, but the records of
            # the transaction it had not sent yet would go out with the next
            # one: a new producer with the same id carries on.
            producer, self._producer = self.producer, None
            discard(producer)
            self.counters.add("producer_renewals")
            log.info("%s: the transaction was aborted by an epoch bump (%s: %s); a new producer carries on",
                     self.name, type(cause).__name__, cause)
            return
        try:
            self.producer.abort_transaction()
            return
        except KafkaError as exc:
            abort_error = exc
        producer, self._producer = self.producer, None
        discard(producer)
        now = time.monotonic()
        if self._renewed_at is not None and now - self._renewed_at < FENCED_AGAIN_WINDOW_S:
            raise WorkerFenced(
                f"{self.name}: fenced again within {FENCED_AGAIN_WINDOW_S:.0f} s ({type(cause).__name__}: {cause}; "
                f"abort: {abort_error}): another worker with transactional id {self.transactional_id!r} "
                "has taken over, so this one stops"
            ) from abort_error
        self._renewed_at = now
        self.counters.add("producer_renewals")
        log.warning(
            "%s: its producer was fenced (%s: %s); a new one with the same transactional id carries on",
            self.name, type(cause).__name__, cause,
        )
