"""No single record stops a consuming role (issue 14, item 2), against a real broker.

Each consumer role of the seed topology reads, on one partition of its first
topic, valid records around three bad ones: a 5 MB value (gzip makes it
small enough for the broker), a key that is not UTF-8, and a record with a
header key that is not UTF-8 and a header without a value (kafka-python
cannot even read it). Each bad record must be dead-lettered with its reason
and the valid records on both partitions processed, within one bounded wait
and without a retry; a record whose only oddity is a header without a value
is valid and processed; a role started again afterwards is not stuck.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable

import pytest
from rawrecords import RawHeaderKey, write_batch
from waiting import wait_for

from orderlab.clients import make_producer
from orderlab.dlq import MAX_DEAD_LETTER_VALUE_BYTES
from orderlab.events import (
    CONFIRMED, DECLINED, ORDER, ConfirmedOrder, DeclinedOrder, RecordType, encode_confirmed, encode_declined,
    encode_order,
)
from orderlab.generator import OrderFactory
from orderlab.reconcile import read_dead_letters, read_topic_keys
from orderlab.seed import SEED
from orderlab.settings import Settings
from orderlab.topics import ensure_topics
from orderlab.wiring import Wiring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BAD_PARTITION, OTHER_PARTITION = 3, 0
HUGE = 5 * 1024 * 1024
WAIT_S = 60.0

FACTORY = OrderFactory(seed=14)


def valid_record(record: RecordType) -> tuple[bytes, bytes]:
    """A (key, value) that decodes as ``record``, keyed by its order id."""
    order = FACTORY.make()
    makers: dict[str, Callable[[], bytes]] = {
        ORDER.name: lambda: encode_order(order),
        CONFIRMED.name: lambda: encode_confirmed(ConfirmedOrder(order, f"pay_{order.order_id[:8]}", time.time())),
        DECLINED.name: lambda: encode_declined(DeclinedOrder(order, "card declined", time.time())),
    }
    if record.name not in makers:
        raise AssertionError(f"no valid sample for record type {record.name!r}: add one to valid_record()")
    return order.order_id.encode(), makers[record.name]()


def write_records(settings: Settings, topic: str, record: RecordType) -> tuple[dict[int, str], int, set[str]]:
    """Valid and bad records on ``topic``; returns ({offset of a bad one: the reason expected}, how many, valid keys)."""
    producer = make_producer(settings, compression_type="gzip", max_request_size=2 * HUGE)
    valid_keys: set[str] = set()

    def good(partition: int) -> int:
        key, value = valid_record(record)
        valid_keys.add(key.decode())
        return producer.send(topic, key=key, value=value, partition=partition).get(timeout=30).offset

    expected: dict[int, str] = {}
    try:
        good(BAD_PARTITION)
        good(OTHER_PARTITION)
        huge = json.dumps({"order_id": "huge", "padding": "x" * HUGE}).encode()
        offset = producer.send(topic, key=b"huge", value=huge, partition=BAD_PARTITION).get(timeout=30).offset
        expected[offset] = "bytes, more than the"
        good(BAD_PARTITION)
        offset = producer.send(topic, key=b"\xff\xfe-not-utf8", value=valid_record(record)[1],
                               partition=BAD_PARTITION).get(timeout=30).offset
        expected[offset] = "key is not UTF-8"
        good(BAD_PARTITION)
        good(OTHER_PARTITION)
    finally:
        producer.close(timeout=5)
    bad_headers = [(RawHeaderKey(b"\xff\xfe"), b"v"), ("no-value", None)]
    expected[write_batch(settings, topic, BAD_PARTITION, [(b"bad-headers", valid_record(record)[1], bad_headers)])] = (
        "the Kafka client cannot read this record"
    )
    producer = make_producer(settings)
    try:
        good(BAD_PARTITION)
        key, value = valid_record(record)
        valid_keys.add(key.decode())
        write_batch(settings, topic, BAD_PARTITION, [(key, value, [("no-value", None)])])  # valid: a null header is allowed
        good(BAD_PARTITION)
        good(OTHER_PARTITION)
    finally:
        producer.close(timeout=5)
    return expected, len(valid_keys) + len(expected), valid_keys


CASES = [(spec.name, False) for spec in SEED.consumers()] + [("transactions", True)]


@pytest.mark.parametrize(("role", "exactly_once"), CASES, ids=[f"{r}{'-eos' if e else ''}" for r, e in CASES])
def test_a_bad_record_is_dead_lettered_and_the_role_goes_on(settings: Settings, role: str, exactly_once: bool) -> None:
    settings = replace(settings, exactly_once=exactly_once, order_details_partitions=4)
    spec = SEED.role(role)
    read = spec.reads[0]
    topic = read.topic + settings.topic_suffix
    ensure_topics(settings)
    expected, total, valid_keys = write_records(settings, topic, read.record)

    wiring = Wiring(settings, SEED)
    try:
        wiring.prepare(role)
        with wiring.service(role) as service:
            done = wait_for(lambda: service.counters["consumed"] >= total, timeout=WAIT_S)
            counters = service.counters.snapshot()
            assert done, f"{role} handled {counters['consumed']} of {total} records in {WAIT_S:.0f} s: {counters}"
            assert service.error is None
        assert counters["dead_lettered"] == len(expected) and counters["unreadable"] == 1, counters
        assert counters["retries"] == 0, f"a bad record made {role} retry: {counters}"
        assert processed(role, service, wiring, settings) == valid_keys

        letters = {letter.source_offset: letter for letter in read_dead_letters(settings, [settings.dlq_topic(topic)])}
        assert sorted(letters) == sorted(expected)
        for offset, reason in expected.items():
            letter = letters[offset]
            assert reason in letter.reason, letter
            assert (letter.source_topic, letter.source_partition, letter.role) == (topic, BAD_PARTITION, role)
        huge = next(letter for letter in letters.values() if letter.key == b"huge")
        assert huge.cut and huge.value_size is not None and huge.value_size > HUGE
        assert huge.value is not None and len(huge.value) == MAX_DEAD_LETTER_VALUE_BYTES
        unreadable = next(letter for letter in letters.values() if "cannot read" in letter.reason)
        assert unreadable.key is None and not unreadable.value and unreadable.value_size is None

        # started again: nothing is read twice, nothing is stuck
        producer = make_producer(settings)
        key, value = valid_record(read.record)
        producer.send(topic, key=key, value=value, partition=BAD_PARTITION).get(timeout=30)
        producer.close(timeout=5)
        with wiring.service(role) as again:
            assert wait_for(lambda: again.counters["consumed"] >= 1, timeout=WAIT_S), again.counters.snapshot()
            assert not wait_for(lambda: again.counters["consumed"] > 1, timeout=1.0)
            assert again.counters["dead_lettered"] == 0 and again.error is None
    finally:
        wiring.close()


def processed(role: str, service: Any, wiring: Wiring, settings: Settings) -> set[str]:
    """The keys (order ids) of the valid records the role did its work for, as it shows them."""
    if role == "transactions":
        return set(read_topic_keys(settings, settings.order_confirmed_topic)) | set(
            read_topic_keys(settings, settings.order_declined_topic))
    if role == "email":
        assert wiring.catcher is not None
        assert wait_for(lambda: wiring.catcher.count() >= service.counters["sent"], timeout=10)
        return {mail.order_id for mail in wiring.catcher.messages}
    if role == "analytics":
        orders, _items, _outcomes = service.frames()
        return set(orders["order_id"])
    raise AssertionError(f"say how role {role!r} shows what it processed")


def test_the_reconciliation_reads_a_key_that_is_not_utf8(settings: Settings) -> None:
    ensure_topics(settings)
    producer = make_producer(settings)
    producer.send(settings.order_details_topic, key=b"\xff\xfe-not-utf8", value=b"{}").get(timeout=30)
    producer.send(settings.order_details_topic, key=b"order-1", value=b"{}").get(timeout=30)
    producer.close(timeout=5)
    keys = read_topic_keys(settings, settings.order_details_topic)
    assert sorted(keys) == sorted(["\ufffd\ufffd-not-utf8", "order-1"])
