"""Bad records without a broker: the bounds the decoders and dead letters keep, and reading dead letters
that anyone may have written. (That a role steps over each kind of bad record, against a real broker,
is ``tests/integration/test_bad_records.py``.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from kafka.errors import CorruptRecordError, KafkaTimeoutError

import fakes
from orderlab.dlq import (
    MAX_DEAD_LETTER_KEY_BYTES, MAX_DEAD_LETTER_VALUE_BYTES, MAX_REASON_CHARS, REASON, SOURCE_KEY_BYTES,
    SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_VALUE_BYTES, parse_dead_letter, send_to_dlq,
)
from orderlab.events import (
    MAX_KEY_BYTES, MAX_ORDER_BYTES, MAX_OUTCOME_BYTES, ConfirmedOrder, EventError, LineItem, Order, check_key,
    decode_confirmed, decode_order, encode_confirmed, encode_order,
)
from orderlab.seed import SEED
from orderlab.services.base import Counters
from orderlab.services.intake import Intake
from orderlab.services.unreadable import UnreadableRecord, may_be_a_record
from orderlab.settings import Settings

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_suffix="-unit")
TOPIC = "order_details-unit"


def largest_order(name_chars: int = 200) -> Order:
    """An order as large as a shop could send: MAX_ITEMS line items with long names."""
    items = [LineItem(f"SKU-{n:04d}", "N" * name_chars, 100, 999_999) for n in range(50)]
    return Order.create("0" * 36, "c" * 36, "someone.with.a.long.name@example.com", items, created_at=1.7e9)


def test_the_largest_real_order_decodes_and_its_outcome_fits_the_outcome_bound() -> None:
    raw = encode_order(largest_order())
    assert len(raw) < MAX_ORDER_BYTES / 4
    assert decode_order(raw) == largest_order()
    outcome = encode_confirmed(ConfirmedOrder(largest_order(), "pay_1", 1.7e9))
    assert decode_confirmed(outcome).order == largest_order()


def test_an_order_far_larger_than_any_real_one_is_refused_before_it_is_parsed() -> None:
    order = json.loads(encode_order(largest_order()))
    order["customer_id"] = "c" * (5 * 1024 * 1024)  # valid-looking: the decoder would accept every field
    with pytest.raises(EventError, match=r"an order record is 5,2\d\d,\d\d\d bytes, more than the 65,536"):
        decode_order(json.dumps(order).encode())
    with pytest.raises(EventError, match="a confirmed order record is"):
        decode_confirmed(b" " * (MAX_OUTCOME_BYTES + 1))


@pytest.mark.parametrize(("key", "reason"), [
    (b"\xff\xfe-id", "key is not UTF-8 text"),
    (b"k" * (MAX_KEY_BYTES + 1), "key is 1,025 bytes"),
])
def test_a_key_that_is_not_an_id_is_refused(key: bytes, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        check_key(key)


def test_an_order_id_key_and_no_key_are_fine() -> None:
    check_key(None)
    check_key("3f2b5c1e-0000-4000-8000-000000000000".encode())
    check_key("ordre-é".encode())


def test_a_dead_letter_is_cut_to_its_bounds_and_says_how_large_the_record_was() -> None:
    broker = fakes.FakeBroker()
    send_to_dlq(broker.make_producer(SETTINGS), SETTINGS, topic=TOPIC, reason="r" * 5000, role="transactions",
                key=b"k" * 5000, value=b"v" * (5 * 1024 * 1024), partition=3, offset=7)
    (record,) = broker.records(TOPIC + ".dlq")
    assert len(record.value) == MAX_DEAD_LETTER_VALUE_BYTES and len(record.key) == MAX_DEAD_LETTER_KEY_BYTES
    headers = dict(record.headers)
    assert headers[SOURCE_VALUE_BYTES] == b"5242880" and headers[SOURCE_KEY_BYTES] == b"5000"
    assert len(headers[REASON].decode()) < MAX_REASON_CHARS + 40 and headers[REASON].endswith(b"(5,000 characters)")
    letter = parse_dead_letter(record)
    assert (letter.source_partition, letter.source_offset, letter.value_size, letter.key_size) == (3, 7, 5242880, 5000)
    assert letter.cut


def test_a_record_with_neither_key_nor_value_still_gets_a_dead_letter() -> None:
    broker = fakes.FakeBroker()
    send_to_dlq(broker.make_producer(SETTINGS), SETTINGS, topic=TOPIC, reason="unreadable", role="analytics",
                key=None, value=None, partition=1, offset=2, unreadable=True)
    (record,) = broker.records(TOPIC + ".dlq")
    assert record.key is None and record.value == b""
    assert SOURCE_VALUE_BYTES not in dict(record.headers)  # the size of what could not be read is not known
    letter = parse_dead_letter(record)
    assert letter.value_size is None and not letter.cut and letter.reason == "unreadable"


@pytest.mark.parametrize("headers", [
    [(REASON, None), (SOURCE_PARTITION, b"three"), (SOURCE_OFFSET, b"\xff\xfe"), (SOURCE_VALUE_BYTES, b"")],
    [("\udcff\udcfe", b"x"), (REASON, b"\xffbad \xfe utf-8"), ("odd",), None],
    None,
])
def test_reading_a_dead_letter_tolerates_odd_headers(headers: list | None) -> None:
    record = SimpleNamespace(topic=TOPIC + ".dlq", headers=headers, key=None, value=b"x", timestamp=0)
    letter = parse_dead_letter(record)
    assert letter.source_topic == TOPIC
    assert letter.source_partition is None and letter.source_offset is None and letter.value_size is None
    assert letter.reason in ("(no reason recorded)", "\ufffdbad \ufffd utf-8")


def test_intake_dead_letters_each_bad_record_with_its_reason_and_decodes_the_rest() -> None:
    broker = fakes.FakeBroker()
    producer = broker.make_producer(SETTINGS)
    counters = Counters("dead_lettered", "unreadable")
    intake = Intake(SETTINGS, SEED.role("transactions").ports(SETTINGS), "transactions", counters)
    order = largest_order(10)
    raw = [
        fakes.FakeRecord(TOPIC, 0, 0, b"id-1", encode_order(order)),
        fakes.FakeRecord(TOPIC, 0, 1, b"\xff-id", encode_order(order)),
        fakes.FakeRecord(TOPIC, 0, 2, b"huge", b"x" * (MAX_ORDER_BYTES + 1)),
        UnreadableRecord(TOPIC, 0, 3, "the Kafka client cannot read this record (CorruptRecordError: ...)"),
        fakes.FakeRecord(TOPIC, 0, 4, None, None),
    ]
    decoded, dead = intake.decode(raw, producer)
    assert [(r.offset, r.event) for r in decoded] == [(0, order)]
    assert len(dead) == 4 and counters.snapshot() == {"dead_lettered": 4, "unreadable": 1}
    reasons = {parse_dead_letter(r).source_offset: parse_dead_letter(r).reason for r in broker.records(TOPIC + ".dlq")}
    assert reasons[1].startswith("key is not UTF-8") and "more than the 65,536" in reasons[2]
    assert reasons[3].startswith("the Kafka client cannot read") and reasons[4] == "record has no value"


def test_only_errors_a_record_can_cause_send_a_worker_looking_for_one() -> None:
    assert may_be_a_record(CorruptRecordError("Record batch for partition p at offset 1 failed crc check"))
    assert may_be_a_record(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"))
    assert not may_be_a_record(KafkaTimeoutError("the broker is away"))
    assert not may_be_a_record(KeyboardInterrupt())
