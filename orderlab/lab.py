"""The Lab: the whole pipeline in one process, for notebooks, the demo and the bench.

It starts the four roles (transactions as N workers in one consumer group),
an SMTP catcher when no SMTP server is configured, and the ledger; it lets
you change the order rate, the decline probability, the payment latency and
the number of workers while everything runs; and it takes snapshots of every
counter and of consumer lag.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from kafka import KafkaProducer

from . import topics as topic_admin
from .clients import check_broker, make_producer, make_reply_producer
from .dlq import parse_dead_letter
from .lag import LagMeter
from .ledger import Ledger
from .mailcatcher import MailCatcher
from .reconcile import Reconciliation, account, read_topic_keys, read_topic_records
from .services import AnalyticsBackend, EmailNotifier, OrdersBackend, PaymentControls, Service, TransactionsBackend
from .settings import Settings

log = logging.getLogger(__name__)

MAX_TRANSACTIONS_WORKERS = 12


@dataclass(frozen=True)
class LabSnapshot:
    """Everything a dashboard shows, taken at one moment."""

    taken_at: float
    rate: float
    workers: int
    placed: int
    confirmed: int
    declined: int
    emails_sent: int
    # confirmation records the e-mail role has read (a redelivered one is read
    # but not mailed again), to compare with ``confirmed`` records written
    confirmations_read: int
    analytics_orders_seen: int
    dead_lettered: int
    replayed: int
    lag: dict[str, int] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return self.confirmed + self.declined


def new_run_suffix(prefix: str = "run") -> str:
    """A topic/group suffix unique to one run, so runs cannot see each other's records."""
    return f"-{prefix}-{uuid.uuid4().hex[:8]}"


class Lab:
    """The four roles in one process. ``with Lab(...) as lab:`` starts and stops them."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        rate: float = 0.0,
        workers: int = 2,
        decline_probability: float = 0.1,
        payment_latency_ms: float = 0.0,
        limit: int | None = None,
        ledger: Ledger | None = None,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        # extra kafka-python settings for every consumer role (e.g. a short
        # session_timeout_ms, so a crashed worker's partitions move on quickly)
        self.consumer_config = dict(consumer_config or {})
        self.controls = PaymentControls(decline_probability, payment_latency_ms)
        self._initial_rate = rate
        self._initial_workers = workers
        self._limit = limit
        self._own_ledger = ledger is None
        self.ledger = ledger
        self.catcher: MailCatcher | None = None
        self.producer: KafkaProducer | None = None  # the order source's (it lingers, to batch orders)
        self.reply_producer: KafkaProducer | None = None  # the consumer roles' (see clients.REPLY_LINGER_MS)
        self.orders: OrdersBackend | None = None
        self.email: EmailNotifier | None = None
        self.analytics: AnalyticsBackend | None = None
        self.workers: list[TransactionsBackend] = []
        self._retired: list[TransactionsBackend] = []
        self._lag = LagMeter(self.settings)
        self._lock = threading.RLock()
        self._started = False
        self._next_worker = 0

    # -- lifecycle ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> "Lab":
        """Check the broker, create topics, start every role. Idempotent."""
        with self._lock:
            if self._started:
                return self
            check_broker(self.settings)
            topic_admin.ensure_topics(self.settings)
            if self.ledger is None:
                self.ledger = Ledger.from_settings(self.settings)
            smtp_host, smtp_port = self.settings.smtp_host, self.settings.smtp_port
            if not smtp_host:
                self.catcher = MailCatcher().start()
                smtp_host, smtp_port = self.catcher.host, self.catcher.port
            try:
                self.producer = make_producer(self.settings)
                self.reply_producer = make_reply_producer(self.settings)
                self.analytics = AnalyticsBackend(self.settings, producer=self.reply_producer, consumer_config=self.consumer_config)
                self.email = EmailNotifier(
                    self.settings, self.ledger, smtp_host=smtp_host, smtp_port=smtp_port, producer=self.reply_producer,
                    consumer_config=self.consumer_config,
                )
                self.orders = OrdersBackend(self.settings, rate=0, limit=self._limit, producer=self.producer)
                for service in (self.analytics, self.email):
                    service.start()
                self.scale_transactions(self._initial_workers, _starting=True)
                self.orders.start()
                self._started = True
                # Everything alive now (modules, clients, the roles) lives as long
                # as the lab: keep it out of the cyclic GC's full collections,
                # which otherwise stop every role for tens of milliseconds.
                gc.freeze()
                self.orders.set_rate(self._initial_rate)
            except BaseException:
                self._started = True
                self.stop()
                raise
            return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the order source first, then the roles downstream of it; close everything. Idempotent."""
        with self._lock:
            if not self._started:
                return
            services: list[Service | None] = [self.orders, *self.workers, self.email, self.analytics]
            for service in services:
                if service is not None:
                    service.stop(timeout)
            self._retired.extend(self.workers)  # their counters still count in snapshots
            self.workers = []
            for producer in (self.producer, self.reply_producer):
                if producer is not None:
                    producer.close(timeout=5)
            self.producer = self.reply_producer = None
            self._lag.close()
            if self.catcher is not None:
                self.catcher.stop()
            if self._own_ledger and self.ledger is not None:
                self.ledger.close()
            gc.unfreeze()
            self._started = False

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _require_running(self) -> None:
        if not self._started:
            raise RuntimeError("the lab is not running: call lab.start() first")

    # -- knobs --------------------------------------------------------------------
    def set_rate(self, orders_per_s: float) -> None:
        self._require_running()
        assert self.orders is not None
        self.orders.set_rate(orders_per_s)

    @property
    def rate(self) -> float:
        return self.orders.rate if self.orders is not None else self._initial_rate

    @property
    def worker_count(self) -> int:
        """Transactions workers running now, or the number ``start()`` will run."""
        return len(self.workers) if self._started else self._initial_workers

    def revenue_cents(self) -> int:
        """Total value of the orders the analytics role has seen so far (placed, not only paid)."""
        return self.analytics.revenue_cents if self.analytics is not None else 0

    def generate(self, count: int, *, rate: float, timeout: float = 60.0) -> LabSnapshot:
        """Let the generator place ``count`` more orders at ``rate``/s, then return to the previous rate.

        Exact when the generator was idle (rate 0) before the call, which is how
        the lessons use it; waits (bounded) until the orders are placed, not settled.
        """
        self._require_running()
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if rate <= 0:
            raise ValueError(f"rate must be > 0 orders/s to generate orders, got {rate}")
        orders = self.orders
        assert orders is not None
        previous_rate, previous_limit = orders.rate, orders.limit
        orders.set_rate(0)
        target = orders.counters["placed"] + count
        orders.limit = target
        orders.set_rate(rate)
        try:
            return self.wait_until(lambda s: s.placed >= target, timeout)
        finally:
            orders.set_rate(0)
            orders.bucket.take()  # drop whole tokens earned at ``rate``: lifting the limit must not release them
            orders.limit = previous_limit
            orders.set_rate(previous_rate)

    def set_decline_probability(self, probability: float) -> None:
        self.controls.set_decline_probability(probability)

    def set_payment_latency_ms(self, latency_ms: float) -> None:
        self.controls.latency_ms = latency_ms

    def scale_transactions(self, count: int, *, _starting: bool = False) -> int:
        """Run ``count`` transactions workers (one consumer each, one group); returns the count."""
        if not _starting:
            self._require_running()
        if not 1 <= count <= MAX_TRANSACTIONS_WORKERS:
            raise ValueError(f"transactions workers must be between 1 and {MAX_TRANSACTIONS_WORKERS}, got {count}")
        with self._lock:
            assert self.ledger is not None
            while len(self.workers) < count:
                worker = TransactionsBackend(
                    self.settings, self.ledger, controls=self.controls, worker=self._free_slot(), producer=self.reply_producer,
                    consumer_config=self.consumer_config,
                )
                worker.start()
                self.workers.append(worker)
            while len(self.workers) > count:
                worker = self.workers.pop()
                worker.stop()
                self._retired.append(worker)
            return len(self.workers)

    def _free_slot(self) -> int:
        used = {worker.worker for worker in self.workers}
        return next(slot for slot in range(MAX_TRANSACTIONS_WORKERS) if slot not in used)

    def crash_worker(self, index: int = 0, *, after_send: bool = True, min_records: int = 1) -> TransactionsBackend:
        """Fault injection: make worker ``index`` die at its next batch (of at least ``min_records``) without committing."""
        self._require_running()
        with self._lock:
            worker = self.workers[index]
            worker.crash(after_send=after_send, min_records=min_records)
            return worker

    def replace_dead_workers(self) -> int:
        """Start a new worker (same slot) for each one that crashed; returns how many."""
        self._require_running()
        with self._lock:
            replaced = 0
            for position, worker in enumerate(list(self.workers)):
                if not worker.alive:
                    self._retired.append(worker)
                    assert self.ledger is not None
                    fresh = TransactionsBackend(
                        self.settings, self.ledger, controls=self.controls, worker=worker.worker, producer=self.reply_producer,
                        consumer_config=self.consumer_config,
                    )
                    fresh.start()
                    self.workers[position] = fresh
                    replaced += 1
            return replaced

    # -- placing by hand --------------------------------------------------------------
    def place(self, payload: dict[str, Any]) -> Any:
        """Place one order from a dict (a form); invalid ones go to the DLQ with the reason."""
        self._require_running()
        assert self.orders is not None
        return self.orders.submit(payload)

    # -- watching ---------------------------------------------------------------------
    def _sum(self, services: list[Any], counter: str) -> int:
        return sum(service.counters[counter] for service in services)

    def snapshot(self, *, with_lag: bool = True) -> LabSnapshot:
        with self._lock:
            workers = list(self.workers)
            every_worker = workers + self._retired
        orders, email, analytics = self.orders, self.email, self.analytics
        lag: dict[str, int] = {}
        if with_lag and self._started:
            lag = self._lag.lag({
                self.settings.group_id("transactions"): (self.settings.order_details_topic,),
                self.settings.group_id("email"): (self.settings.order_confirmed_topic,),
                self.settings.group_id("analytics"): (
                    self.settings.order_details_topic, self.settings.order_confirmed_topic, self.settings.order_declined_topic,
                ),
            })
        roles: dict[str, dict[str, Any]] = {}
        for service in [orders, email, analytics, *workers]:
            if service is not None:
                roles[service.name] = service.status()
        dead = self._sum(every_worker, "dead_lettered") + sum(
            s.counters["dead_lettered"] for s in (email, analytics) if s is not None
        ) + (orders.counters["rejected"] if orders is not None else 0)
        return LabSnapshot(
            taken_at=time.time(),
            rate=self.rate,
            workers=len(workers),
            placed=orders.counters["placed"] if orders else 0,
            confirmed=self._sum(every_worker, "confirmed"),
            declined=self._sum(every_worker, "declined"),
            emails_sent=email.counters["sent"] if email else 0,
            confirmations_read=email.counters["consumed"] if email else 0,
            analytics_orders_seen=analytics.orders_seen if analytics else 0,
            dead_lettered=dead,
            replayed=self._sum(every_worker, "replayed"),
            lag=lag,
            roles=roles,
        )

    def failures(self) -> dict[str, str]:
        """Roles whose thread ended with an error, and the error."""
        services = [self.orders, self.email, self.analytics, *self.workers]
        return {s.name: str(s.error) for s in services if s is not None and s.error is not None}

    def wait_until(self, condition: Callable[[LabSnapshot], bool], timeout: float, *, poll_s: float = 0.2,
                   progress: Callable[[LabSnapshot], None] | None = None) -> LabSnapshot:
        """Wait (bounded) until ``condition(snapshot)`` holds; returns the last snapshot.

        Raises ``RuntimeError`` at once if a role failed, rather than waiting out the bound.
        """
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.snapshot(with_lag=False)
            if progress is not None:
                progress(snapshot)
            if condition(snapshot):
                return snapshot
            failed = self.failures()
            if failed:
                raise RuntimeError("; ".join(f"{name} failed: {error}" for name, error in failed.items()))
            if time.monotonic() >= deadline:
                return snapshot
            time.sleep(poll_s)

    def groups_settled(self) -> bool:
        """Whether every consumer group has given partitions to every member that can have some.

        Right after a start or a rescale, a member that joined late holds
        nothing until the group's next rebalance, which then takes partitions
        away from the others mid-work (their next commit is refused and the
        batch is done again). This is true once that has happened.
        """
        with self._lock:
            workers, email, analytics = list(self.workers), self.email, self.analytics
        partitions = self.settings.order_details_partitions
        held = [worker.partitions for worker in workers]
        # each worker reports what it held after its last poll: while one has
        # taken its new share and another not yet given its old one back, the
        # shares add up to more than there are partitions
        if sum(held) != partitions or sum(1 for count in held if count > 0) < min(len(workers), partitions):
            return False
        return all(service is None or service.partitions > 0 for service in (email, analytics))

    def wait_for_orders(self, count: int, timeout: float = 30.0, **kwargs: Any) -> LabSnapshot:
        """Wait until ``count`` orders are placed, settled, e-mailed (if confirmed) and seen by analytics."""
        return self.wait_until(
            lambda s: s.placed >= count and s.settled >= count and s.confirmations_read >= s.confirmed
            and s.analytics_orders_seen >= count,
            timeout,
            **kwargs,
        )

    def emails(self) -> list[Any]:
        """What the embedded SMTP catcher received (empty with an external SMTP server)."""
        return self.catcher.messages if self.catcher is not None else []

    def email_latencies(self) -> list[tuple[float, float]]:
        return self.email.latencies() if self.email is not None else []

    def dead_letters(self) -> list[Any]:
        """Every record of every dead-letter topic of this run, parsed."""
        letters = []
        for topic in self.settings.data_topics:
            for key, value, headers in read_topic_records(self.settings, self.settings.dlq_topic(topic)):
                letters.append(parse_dead_letter(_Record(self.settings.dlq_topic(topic), key, value, headers)))
        return letters

    def reconcile(self) -> Reconciliation:
        """Read the topics and account for every order this lab placed."""
        s = self.settings
        placed = self.orders.placed_ids if self.orders is not None else read_topic_keys(s, s.order_details_topic)
        if self.catcher is not None:
            emailed = [mail.order_id for mail in self.emails() if mail.order_id]
        else:  # an external SMTP server: the ledger knows what was sent
            assert self.ledger is not None
            emailed = self.ledger.emailed_ids()
        dead = sum(len(read_topic_records(s, s.dlq_topic(topic))) for topic in s.data_topics)
        return account(
            placed=placed,
            confirmed=read_topic_keys(s, s.order_confirmed_topic),
            declined=read_topic_keys(s, s.order_declined_topic),
            emailed=emailed,
            analytics_seen=self.analytics.orders_seen if self.analytics is not None else 0,
            dead_lettered=dead,
        )

    def reset(self) -> None:
        """Stop, delete this run's topics, so the next ``start()`` begins empty (for the next class)."""
        self.stop()
        topic_admin.delete_topics(self.settings)


@dataclass(frozen=True)
class _Record:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list
    timestamp: int = 0
