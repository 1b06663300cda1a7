"""Avro orders through a real broker: the schema id travels in a header, v1 and
v2 readers read v1 and v2 records, and what cannot be read lands in the
dead-letter topic with its reason."""

from __future__ import annotations

import pytest

from orderlab.avro import (
    ORDER_V1, ORDER_V2, SCHEMA_ID_HEADER, AvroOrderReader, SchemaRegistry, avro_topic, create_avro_topics, encode,
    order_record, schema_id_header, send_order, subject_for,
)
from orderlab.clients import make_producer
from orderlab.cleanup import remove_run
from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.reconcile import read_dead_letters, read_to_end

pytestmark = pytest.mark.integration


def test_readers_pick_the_writer_schema_by_the_header_and_dead_letter_what_they_cannot_read(settings):
    topic = avro_topic(settings)
    assert create_avro_topics(settings) == [topic, topic + ".dlq"]
    assert create_avro_topics(settings) == [topic, topic + ".dlq"]  # a second call changes nothing
    registry = SchemaRegistry("FULL")
    v1 = registry.register(subject_for(topic), ORDER_V1)
    v2 = registry.register(subject_for(topic), ORDER_V2)
    orders = [OrderFactory(seed=3, customers=10).make(now=1_700_000_000.0 + n) for n in range(5)]
    producer = make_producer(settings)
    try:
        futures = [send_order(producer, topic, orders[0], v1), send_order(producer, topic, orders[1], v2, channel="app")]
        futures += [
            producer.send(topic, key=b"unknown-id", value=encode(order_record(orders[2], channel="app"), ORDER_V2),
                          headers=[schema_id_header(99)]),
            producer.send(topic, key=b"json", value=encode_order(orders[3]), headers=[schema_id_header(v2.id)]),
            producer.send(topic, key=b"no-header", value=encode(order_record(orders[4]), ORDER_V1)),
        ]
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=10)
    stored = list(read_to_end(settings, topic).values())
    assert [r.headers for r in stored[:2]] == [[(SCHEMA_ID_HEADER, b"1")], [(SCHEMA_ID_HEADER, b"2")]]

    with AvroOrderReader(settings, topic, registry, ORDER_V1, role="reader-v1") as old, \
            AvroOrderReader(settings, topic, registry, ORDER_V2, role="reader-v2") as new:
        by_v1, by_v2 = old.read(), new.read()
        for result in (by_v1, by_v2):
            assert [d.order for d in result.orders] == orders[:2]
            assert [d.writer.version for d in result.orders] == [1, 2]
            assert [offset for offset, _ in result.dead_lettered] == [2, 3, 4]
        assert [d.fields.get("channel") for d in by_v1.orders] == [None, None]
        assert [d.fields["channel"] for d in by_v2.orders] == ["web", "app"]
        assert old.read().orders == () and old.read().dead_lettered == ()  # it keeps its place

        letters = read_dead_letters(settings, [settings.dlq_topic(topic)])
        assert sorted((letter.role, letter.source_offset) for letter in letters) == [
            ("reader-v1", 2), ("reader-v1", 3), ("reader-v1", 4), ("reader-v2", 2), ("reader-v2", 3), ("reader-v2", 4)]
        reasons = {(letter.key, letter.role): letter.reason for letter in letters}
        assert reasons[(b"unknown-id", "reader-v2")].startswith("schema id 99 is not in the registry (known ids: 1, 2)")
        assert reasons[(b"json", "reader-v1")].startswith(f"cannot read it as written by {v2.label}: the bytes end before")
        assert reasons[(b"no-header", "reader-v2")] == f"no {SCHEMA_ID_HEADER} header: nothing says which schema wrote the record"
        assert all(letter.source_topic == topic and letter.source_partition == 0 for letter in letters)
        assert {letter.value for letter in letters if letter.key == b"json"} == {encode_order(orders[3])}  # the raw bytes, as sent

        producer = make_producer(settings)
        try:
            send_order(producer, topic, orders[4], v2, channel="phone").get(timeout=30)
        finally:
            producer.close(timeout=10)
        later = new.read()
        assert [(d.offset, d.fields["channel"]) for d in later.orders] == [(5, "phone")] and later.dead_lettered == ()
    with pytest.raises(RuntimeError, match="closed"):
        new.read()
    assert remove_run(settings) == 2


def test_a_reader_on_a_topic_that_does_not_exist_says_so(settings):
    with pytest.raises(RuntimeError, match="create it first"):
        AvroOrderReader(settings.with_(connect_timeout_s=1), avro_topic(settings), SchemaRegistry(), ORDER_V1, role="r")
