"""Following one order through the pipeline: every record it produced, its payment and its e-mail.

:func:`trace` reads the broker, the ledger and the SMTP catcher for one
order id; :func:`build_journey` (pure: tests give it records) puts what was
found in time order, as a table (:meth:`Journey.table`) and as the hops
placed → paid → e-mailed (:meth:`Journey.hops`). The chart of it is
:func:`orderlab.ui.journey.journey_figure`.

Every record of an order is keyed by its id, and Kafka's default
partitioner puts every record with one key on the same partition of a topic
(murmur2 of the key, modulo the topic's partitions). So the order's records
are found by reading one partition of each topic, not whole topics; a
dead-letter topic has one partition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pandas as pd
from kafka import TopicPartition

from .clients import make_consumer
from .dlq import REASON, ROLE
from .events import EventError, PaymentResult, decode_order
from .ledger import Ledger
from .peek import partition_for_key
from .settings import Settings
from .topology import load_topology

READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TracedRecord:
    """One Kafka record of the order: where it is and when its producer made it."""

    topic: str  # the run's name, with its suffix
    partition: int
    offset: int
    timestamp: float  # unix seconds: the record's timestamp (set by its producer)
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        for key, raw in self.headers:
            if key == name:
                return raw.decode(errors="replace")
        return None


@dataclass(frozen=True)
class LedgerEmail:
    """The e-mail the ledger recorded for the order: its Message-ID, and when it was recorded."""

    message_id: str
    recorded_at: float


@dataclass(frozen=True)
class CaughtEmail:
    """An e-mail the SMTP catcher received for the order."""

    message_id: str | None
    to: str
    received_at: float


@dataclass(frozen=True)
class Step:
    """One row of a journey: what happened, where, and when."""

    at: float  # unix seconds
    step: str  # "order placed", "payment taken", "confirmed", ...
    where: str  # a topic's declared name, "ledger: payments", "SMTP catcher"...
    partition: int | None = None
    offset: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Journey:
    """What one order left behind, in time order (see :func:`build_journey`)."""

    order_id: str
    placed_at: float | None  # the order's event time (its created_at), else its first record's timestamp
    steps: tuple[Step, ...]
    records: tuple[TracedRecord, ...]
    payment: PaymentResult | None
    charges: int  # times the card network charged the order (the ledger's gateway_charges)
    ledger_email: LedgerEmail | None
    caught: tuple[CaughtEmail, ...]

    @property
    def paid_at(self) -> float | None:
        return None if self.payment is None else self.payment.processed_at

    @property
    def emailed_at(self) -> float | None:
        """When the SMTP server received the e-mail (the catcher), else when the ledger recorded it."""
        if self.caught:
            return self.caught[0].received_at
        return None if self.ledger_email is None else self.ledger_email.recorded_at

    @property
    def message_id(self) -> str | None:
        """The e-mail's Message-ID: the ledger's, else the catcher's."""
        if self.ledger_email is not None:
            return self.ledger_email.message_id
        return self.caught[0].message_id if self.caught else None

    def records_on(self, topic: str) -> list[TracedRecord]:
        """The order's records on one topic (its declared name, ``order_confirmed``, or the run's)."""
        return [r for r in self.records if r.topic == topic or _declared(r.topic) == topic]

    def _ms_after_placed(self, at: float | None) -> float | None:
        if at is None or self.placed_at is None:
            return None
        ms = (at - self.placed_at) * 1000.0
        # a record's timestamp is cut to the millisecond: one made just after the order can read up to 1 ms before it
        return 0.0 if -1.0 < ms < 0.0 else round(ms, 1) + 0.0  # + 0.0: never "-0.0"

    def table(self) -> pd.DataFrame:
        """One row per step, in time order: step, where, partition, offset, time (UTC), ms after placed, detail."""
        rows = [
            {
                "step": s.step, "where": s.where, "partition": s.partition, "offset": s.offset,
                "time (UTC)": clock_time(s.at), "ms after placed": self._ms_after_placed(s.at), "detail": s.detail,
            }
            for s in self.steps
        ]
        frame = pd.DataFrame(rows, columns=["step", "where", "partition", "offset", "time (UTC)", "ms after placed", "detail"])
        for column in ("partition", "offset"):
            frame[column] = frame[column].astype("Int64")
        return frame

    def hops(self) -> pd.DataFrame:
        """placed → paid → e-mailed: when each happened, ms after placed and ms after the hop before.

        A hop that did not happen (a declined order is never e-mailed) has no time.
        """
        times = {"placed": self.placed_at, "paid": self.paid_at, "e-mailed": self.emailed_at}
        rows, before = [], None
        for hop, at in times.items():
            rows.append({
                "hop": hop,
                "time (UTC)": None if at is None else clock_time(at),
                "ms after placed": self._ms_after_placed(at),
                "ms after the hop before": None if at is None or before is None else round((at - before) * 1000.0, 1),
            })
            before = at if at is not None else before
        return pd.DataFrame(rows).set_index("hop")


def clock_time(at: float) -> str:
    """``14:03:07.123``: a unix time as the time of day in UTC, to the millisecond."""
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}"


# within one millisecond, steps in the order they happen (a record's timestamp is cut to the millisecond)
_STEP_RANK = {"order created": 0, "order placed": 1, "payment decided": 2, "confirmed": 3, "declined": 3,
              "e-mail received": 4, "e-mail recorded": 5}


def _declared(topic: str, suffix: str = "") -> str:
    """A run's topic name without the run's suffix (``order_confirmed-lesson03-1a2b3c4d`` → ``order_confirmed``)."""
    dlq = topic.endswith(".dlq")
    name = topic.removesuffix(".dlq")
    if suffix and name.endswith(suffix):
        name = name[: -len(suffix)]
    elif "-" in name:
        name = name.split("-", 1)[0]
    return name + (".dlq" if dlq else "")


_STEP_OF_TOPIC = {"order_details": "order placed", "order_confirmed": "confirmed", "order_declined": "declined"}


def build_journey(order_id: str, records: Iterable[TracedRecord], *, payment: PaymentResult | None = None,
                  charges: int = 0, ledger_email: LedgerEmail | None = None,
                  caught: Iterable[CaughtEmail] = (), topic_suffix: str = "") -> Journey:
    """Put what was found for ``order_id`` in time order. Pure: no broker, no ledger.

    ``records``: the order's records on any topic of the run (a dead-letter
    topic's carry the reason and the role that refused the record in their
    headers); ``payment`` and ``charges``: the ledger's payment row and how
    many charges it counts; ``ledger_email``: the ledger's e-mail row;
    ``caught``: what the SMTP catcher received for the order.
    """
    records = tuple(sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset)))
    caught = tuple(sorted(caught, key=lambda mail: mail.received_at))
    placed_at = None
    steps: list[Step] = []
    for record in records:
        declared = _declared(record.topic, topic_suffix)
        if declared.endswith(".dlq"):
            detail = f"{record.header(ROLE) or '?'}: {record.header(REASON) or '(no reason recorded)'}"
            steps.append(Step(record.timestamp, "dead-lettered", declared, record.partition, record.offset, detail))
            continue
        detail = ""
        if declared == "order_details":
            try:
                order = decode_order(record.value)
            except EventError as exc:
                detail = f"unreadable: {exc}"
            else:
                detail = f"{order.item_count} unit(s), {order.total_cents / 100:.2f} {order.currency}"
                if placed_at is None:
                    placed_at = order.created_at
        steps.append(Step(record.timestamp, _STEP_OF_TOPIC.get(declared, "record"), declared, record.partition,
                          record.offset, detail))
    if placed_at is None and records:
        placed_at = records[0].timestamp
    elif placed_at is not None:
        steps.append(Step(placed_at, "order created", "order source", detail="its created_at (event time)"))
    if payment is not None:
        outcome = (f"approved, {payment.payment_id}, charged {charges}x" if payment.approved
                   else f"declined: {payment.reason}")
        steps.append(Step(payment.processed_at, "payment decided", "ledger: payments", detail=outcome))
    for mail in caught:
        steps.append(Step(mail.received_at, "e-mail received", "SMTP catcher", detail=f"to {mail.to}, Message-ID {mail.message_id}"))
    if ledger_email is not None:
        steps.append(Step(ledger_email.recorded_at, "e-mail recorded", "ledger: emails",
                          detail=f"Message-ID {ledger_email.message_id}"))
    return Journey(
        order_id=order_id, placed_at=placed_at, records=records,
        steps=tuple(sorted(steps, key=lambda s: (int(s.at * 1000), _STEP_RANK.get(s.step, 9), s.at))),
        payment=payment, charges=charges, ledger_email=ledger_email, caught=caught,
    )


def read_key(settings: Settings, topic: str, key: str, *, timeout_s: float = READ_TIMEOUT_S) -> list[TracedRecord]:
    """The records with ``key`` on ``topic``, read from the one partition the key hashes to (a topic
    that does not exist has none)."""
    consumer = make_consumer(settings, None)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return []
        tp = TopicPartition(topic, partition_for_key(key, len(partitions)))
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        wanted = key.encode()
        found: dict[int, TracedRecord] = {}
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} partition {tp.partition} to its end within {timeout_s:.0f} s")
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    if record.offset < end and record.key == wanted:
                        found[record.offset] = TracedRecord(
                            topic, record.partition, record.offset, record.timestamp / 1000.0, record.value,
                            tuple((name, bytes(raw or b"")) for name, raw in (record.headers or ())),
                        )
        return [found[offset] for offset in sorted(found)]
    finally:
        consumer.close(autocommit=False)


def _caught(catcher: Any, order_id: str) -> list[CaughtEmail]:
    if catcher is None:
        return []
    return [CaughtEmail(mail.message_id, mail.to, mail.received_at) for mail in catcher.messages if mail.order_id == order_id]


def trace(source: Any, order_id: str, *, ledger: Ledger | None = None, catcher: Any = None) -> Journey:
    """One order's journey: its records on every topic of the run, its payment, its e-mail.

    ``source`` is a Lab (its settings, ledger and catcher are used) or
    :class:`~orderlab.settings.Settings` (then pass ``ledger`` and
    ``catcher``, or go without the payment and the e-mail).
    """
    if isinstance(source, Settings):
        settings = source
    else:
        settings = source.settings
        ledger = ledger if ledger is not None else getattr(source, "ledger", None)
        catcher = catcher if catcher is not None else getattr(source, "catcher", None)
    topology = load_topology(settings.topology)
    topics: Sequence[str] = (*topology.data_topics(settings), *topology.dead_letter_topics(settings))
    records = [record for topic in topics for record in read_key(settings, topic, order_id)]
    payment = charges = ledger_email = None
    if ledger is not None:
        payment = ledger.payment(order_id)
        charges = ledger.charge_count([order_id])
        row = ledger.email_record(order_id)
        ledger_email = None if row is None else LedgerEmail(*row)
    return build_journey(order_id, records, payment=payment, charges=charges or 0, ledger_email=ledger_email,
                         caught=_caught(catcher, order_id), topic_suffix=settings.topic_suffix)
