"""Orders Backend: puts every placed order on ``order_details``, keyed by order id.

Orders come from three frontends: the generator (a rate, changeable while
running), a notebook form and the CLI, through :meth:`OrdersBackend.place`
and :meth:`OrdersBackend.submit`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ..clients import make_producer
from ..dlq import send_to_dlq
from ..events import MAX_ORDER_BYTES, EventError, Order, check_size, encode_order, order_from_dict
from ..generator import OrderFactory, TokenBucket
from ..settings import Settings
from ..topology import RoleSpec
from .base import Service
from .outage import Outage, report_connections
from .placed import PlacedIds

log = logging.getLogger(__name__)

# With orders waiting, this long without an acknowledgement is an outage even
# while a connection looks open (a healthy broker answers in milliseconds).
ACK_STALL_S = 5.0


@dataclass(frozen=True)
class Placed:
    """What happened to one order handed to :meth:`OrdersBackend.submit`."""

    accepted: bool
    order_id: str | None
    reason: str = ""


class OrdersBackend(Service):
    """The order source: a generator at a rate, plus orders placed by hand (a form, the CLI).

    Extra arguments: ``rate`` in orders per second (0: the generator waits);
    ``limit``, stop generating after that many orders; ``producer``, one to
    share (it lingers, to batch orders); ``factory``, what makes the orders;
    ``keep_ids``, keep every placed order id for reconciliation (the Lab, the
    demo; 16 bytes an id, see :class:`~orderlab.services.placed.PlacedIds`),
    off for a process that runs for days.
    """

    counter_names = ("placed", "acknowledged", "rejected", "send_errors")

    def __init__(
        self,
        settings: Settings,
        spec: RoleSpec,
        *,
        rate: float = 0.0,
        limit: int | None = None,
        producer: KafkaProducer | None = None,
        factory: OrderFactory | None = None,
        keep_ids: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(settings, spec, **options)
        self.bucket = TokenBucket(rate)
        self.limit = limit  # stop generating after this many orders (None: no limit)
        self._factory = factory
        self._shared_producer = producer
        self._producer: KafkaProducer | None = producer
        self.placed_ids = PlacedIds()  # kept for reconciliation (keep_ids): 16 bytes an id
        self.keep_ids = keep_ids
        self._linger_ms = 0.0
        self._topic = self.ports.output("order_details")
        self.outage = Outage(self.name, detail=lambda: f"{self.unacknowledged:,} orders wait unacknowledged")
        self._acked_seen = 0  # the acknowledged count at the last check, and when it last moved
        self._errors_told = self._errors_seen = 0  # send_errors when the run of failures began; at the last check
        self._acks_moved_at = time.monotonic()

    @property
    def producer(self) -> KafkaProducer:
        """The producer orders go out with (shared, or the role's own once started)."""
        if self._producer is None:
            raise self.not_started("producer")
        return self._producer

    @property
    def factory(self) -> OrderFactory:
        """What makes the generated orders (made in :meth:`setup` unless one was given)."""
        if self._factory is None:
            raise self.not_started("order factory")
        return self._factory

    # -- rate --------------------------------------------------------------
    @property
    def rate(self) -> float:
        """Orders per second the generator is set to now."""
        return self.bucket.rate

    def set_rate(self, rate: float) -> None:
        """Change the generator's rate while it runs (0 pauses it)."""
        self.bucket.set_rate(rate)

    @property
    def generated_all(self) -> bool:
        """Whether the generator has placed limit orders."""
        return self.limit is not None and self.counters["placed"] >= self.limit

    @contextlib.contextmanager
    def burst(self, count: int, rate: float) -> Iterator[int]:
        """Place exactly ``count`` more orders at ``rate``/s; yields the ``placed`` count to wait for.

        On leaving, the rate and limit are what they were before. Exact when
        the generator was idle (rate 0) before, which is how the lessons use it.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if rate <= 0:
            raise ValueError(f"rate must be > 0 orders/s to generate orders, got {rate}")
        previous_rate, previous_limit = self.rate, self.limit
        self.set_rate(0)
        target = self.counters["placed"] + count
        self.limit = target
        self.set_rate(rate)
        try:
            yield target
        finally:
            self.set_rate(0)
            self.bucket.take()  # drop whole tokens earned at ``rate``: lifting the limit must not release them
            self.limit = previous_limit
            self.set_rate(previous_rate)

    # -- placing -----------------------------------------------------------
    def setup(self) -> None:
        """Make the lingering producer and the order factory, unless they were given."""
        if self._producer is None:
            self._producer = make_producer(self.settings)
        if self._factory is None:
            self._factory = OrderFactory()

    def place(self, order: Order) -> Any:
        """Send a valid order; returns the send future (``.get()`` waits for the broker's ack)."""
        producer = self.producer
        # Counted before the send: an order whose send fails is then visible
        # to the reconciliation as lost, never silently missing.
        self.counters.add("placed")
        if self.keep_ids:
            self.placed_ids.append(order.order_id)
        try:
            future = producer.send(self._topic, key=order.order_id.encode(), value=encode_order(order))
        except Exception as exc:
            self._failed(exc)
            raise
        future.add_callback(self._acked).add_errback(self._failed)
        return future

    def submit(self, payload: dict[str, Any]) -> Placed:
        """Place an order from loose input (a form, the CLI, an API call).

        Invalid input is not dropped: it goes to ``order_details.dlq`` with
        the reason, and the reason is returned for the user.
        """
        try:
            order = order_from_dict(payload)
            check_size(encode_order(order), "an order", MAX_ORDER_BYTES)  # readers would refuse it
        except EventError as exc:
            send_to_dlq(
                self.producer, self.settings, topic=self._topic, reason=str(exc),
                role=self.role, key=str(payload.get("order_id", "")).encode() or None,
                value=json.dumps(payload, default=str).encode(),
            ).get(timeout=30)
            self.counters.add("rejected")
            return Placed(False, payload.get("order_id") if isinstance(payload.get("order_id"), str) else None, str(exc))
        self.place(order).get(timeout=30)
        return Placed(True, order.order_id)

    def _acked(self, _metadata: Any) -> None:
        self.counters.add("acknowledged")

    def _failed(self, exc: BaseException) -> None:
        """A send failed (its order is lost): one warning per run of failures, not one per order.

        After an outage longer than the producer's delivery timeout every
        order it held fails at once; the run ends at a check without a new
        failure (:meth:`check_broker` then says how many failed).
        """
        self.counters.add("send_errors")
        if self.counters["send_errors"] - self._errors_told == 1:
            log.warning("%s: a send failed (%s: %s); its order is lost (counted in send_errors)",
                        self.name, type(exc).__name__, exc)

    @property
    def unacknowledged(self) -> int:
        """Orders placed whose send the broker has neither acknowledged nor failed yet."""
        counters = self.counters.snapshot()
        return max(0, counters["placed"] - counters["acknowledged"] - counters["send_errors"])

    def gauges(self) -> dict[str, int]:
        """The orders waiting for the broker's acknowledgement."""
        return {"unacknowledged": self.unacknowledged}

    def check_broker(self) -> None:
        """With orders waiting: no connection, or no acknowledgement for ACK_STALL_S, means the broker is lost."""
        waiting = self.unacknowledged
        acked, errors, now = self.counters["acknowledged"], self.counters["send_errors"], time.monotonic()
        if acked != self._acked_seen or not waiting:
            self._acked_seen, self._acks_moved_at = acked, now
        if errors == self._errors_seen and errors > self._errors_told:  # a run of send failures is over
            if errors - self._errors_told > 1:
                log.warning("%s: %d sends failed in all; their orders are lost", self.name, errors - self._errors_told)
            self._errors_told = errors
        self._errors_seen = errors
        report_connections(self.outage, self._producer, matters=waiting > 0)
        stalled_s = now - self._acks_moved_at
        if waiting and stalled_s >= ACK_STALL_S:
            self.outage.failing("acks", f"no acknowledgement for {stalled_s:.0f} s", at_once=True, lasted_s=stalled_s)
        else:
            self.outage.fine("acks")

    # -- the generator loop ------------------------------------------------
    def loop(self) -> None:
        """Place orders as the token bucket allows; at low rates send each at once instead of lingering."""
        factory, producer = self.factory, self.producer
        self._linger_ms = float(producer.config.get("linger_ms", 0))
        unsent = False  # placed orders that may still linger in the producer
        while not self.stopping:
            remaining = None if self.limit is None else self.limit - self.counters["placed"]
            if remaining is not None and remaining <= 0:
                self.wait(0.1)
                continue
            due = self.bucket.take(remaining)
            for _ in range(due):
                self.place(factory.make())
            unsent = unsent or due > 0
            if due == 0:
                # wait for the next token, but wake at least every 100 ms to
                # notice a rate change
                pause_s = min(0.1, max(0.001, self.bucket.seconds_until_next()))
                if unsent and pause_s * 1000 > self._linger_ms:
                    self._send_now(pause_s)
                    unsent = False
                    pause_s = min(0.1, max(0.0, self.bucket.seconds_until_next()))
                self.wait(pause_s)

    def _send_now(self, within_s: float) -> None:
        """Send what lingers in the producer now, waiting for the acks at most ``within_s``.

        The producer lingers to put many orders in one request at high
        rates. At a low rate the generator would sleep longer than that
        anyway, so the orders it placed go out at once instead of waiting
        out the linger (which, with the GIL handed around, costs them about
        twice ``linger_ms``).
        """
        try:
            self.producer.flush(timeout=within_s)
        except KafkaError:  # not acknowledged yet (or the broker is away): the records stay queued and go out anyway
            pass

    def close(self) -> None:
        """Send what still lingers (bounded), then close the producer unless it is shared."""
        if self._producer is not None:
            self._producer.flush(timeout=10)
            if self._producer is not self._shared_producer:
                self._producer.close(timeout=5)
