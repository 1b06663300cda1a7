"""Reconciliation: read what really is in the topics and account for every order.

:func:`account` is pure (tests give it lists); :func:`read_topic_keys` reads
a topic from the beginning to its current end with a group-less consumer.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from kafka import TopicPartition

from .clients import make_consumer
from .dlq import DeadLetter, parse_dead_letter
from .settings import Settings


@dataclass(frozen=True)
class Reconciliation:
    """Every order of a run accounted for: counts read back from the topics, the inbox and the ledger."""

    orders_placed: int
    orders_confirmed: int
    orders_declined: int
    emails_sent: int
    analytics_orders_seen: int
    dead_lettered: int
    lost: int
    duplicated: int
    duplicate_confirmations: int
    duplicate_emails: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def account(
    placed: Iterable[str],
    confirmed: Iterable[str],
    declined: Iterable[str],
    emailed: Iterable[str],
    analytics_seen: int,
    dead_lettered: int,
) -> Reconciliation:
    """Count outcomes per order id.

    ``lost``: placed orders with no outcome, plus confirmed orders with no
    e-mail. ``duplicated``: extra outcome records for one order (in either
    topic) plus extra e-mails.
    """
    placed_ids = set(placed)
    outcomes = Counter(confirmed)
    confirmed_ids = set(outcomes)
    outcomes.update(declined)
    emails = Counter(emailed)
    no_outcome = placed_ids - set(outcomes)
    no_email = confirmed_ids - set(emails)
    duplicate_outcomes = sum(n - 1 for n in outcomes.values() if n > 1)
    duplicate_emails = sum(n - 1 for n in emails.values() if n > 1)
    declined_ids = set(outcomes) - confirmed_ids
    return Reconciliation(
        orders_placed=len(placed_ids),
        orders_confirmed=len(confirmed_ids),
        orders_declined=len(declined_ids),
        emails_sent=len(emails),
        analytics_orders_seen=analytics_seen,
        dead_lettered=dead_lettered,
        lost=len(no_outcome) + len(no_email),
        duplicated=duplicate_outcomes + duplicate_emails,
        duplicate_confirmations=duplicate_outcomes,
        duplicate_emails=duplicate_emails,
    )


def read_to_end(settings: Settings, topic: str, timeout_s: float = 30.0) -> dict[tuple[int, int], Any]:
    """``{(partition, offset): record}`` of ``topic`` from the beginning up to its end offsets as of now.

    Keyed by position, so a record the client happens to return twice (a
    re-fetch after a slow poll) counts once: a duplicate found by the
    reconciliation is a second record in the log, never a second read.
    """
    consumer = make_consumer(settings, None, consumer_timeout_ms=1000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return {}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        found: dict[tuple[int, int], Any] = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for record in batch:
                    if record.offset < end[tp]:
                        found[(record.partition, record.offset)] = record
        return dict(sorted(found.items()))
    finally:
        consumer.close(autocommit=False)


def read_topic_records(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes | None, list]]:
    """Every (key, value, headers) of ``topic`` up to its end offsets as of now, in partition/offset order."""
    return [(r.key, r.value, r.headers) for r in read_to_end(settings, topic, timeout_s).values()]


def read_keys_by_position(settings: Settings, topic: str, timeout_s: float = 30.0) -> dict[tuple[int, int], str]:
    """``{(partition, offset): key}`` of the keyed records of ``topic``."""
    return {
        position: record.key.decode(errors="replace")
        for position, record in read_to_end(settings, topic, timeout_s).items()
        if record.key is not None
    }


def read_topic_keys(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[str]:
    """The keys (order ids) of ``topic``'s keyed records; a key that is not UTF-8 reads with U+FFFD in it."""
    return [key.decode(errors="replace") for key, _value, _headers in read_topic_records(settings, topic, timeout_s)
            if key is not None]


def count_records(settings: Settings, topic: str) -> int:
    return len(read_topic_records(settings, topic))


def read_dead_letters(settings: Settings, dead_letter_topics: Iterable[str], timeout_s: float = 30.0) -> list[DeadLetter]:
    """Every record of the given dead-letter topics, parsed (reason, source topic, partition, offset)."""
    return [
        parse_dead_letter(record)
        for topic in dead_letter_topics
        for record in read_to_end(settings, topic, timeout_s).values()
    ]


def reconcile_run(settings: Settings, *, placed: Iterable[str] | None, emailed: Iterable[str], analytics_seen: int,
                  dead_letter_topics: Iterable[str]) -> Reconciliation:
    """Read a run's topics back and account for every order it placed.

    ``placed``: the ids the order source sent (None: read them from
    ``order_details``); ``emailed``: the order ids of the e-mails the SMTP
    server received (the catcher's inbox, or the ledger for an external server).
    """
    s = settings
    return account(
        placed=read_topic_keys(s, s.order_details_topic) if placed is None else placed,
        confirmed=read_topic_keys(s, s.order_confirmed_topic),
        declined=read_topic_keys(s, s.order_declined_topic),
        emailed=emailed,
        analytics_seen=analytics_seen,
        dead_lettered=sum(len(read_to_end(s, topic)) for topic in dead_letter_topics),
    )
