"""Lesson 01's keys and partitions against a real broker: where keyed and unkeyed records land, and what growing a topic moves."""

from __future__ import annotations

import pytest

from orderlab.clients import make_producer
from orderlab.ordering import create_topic, events_by_key, grow_topic, led_partitions, order_event, placement, read_events
from orderlab.peek import partition_for_key

pytestmark = pytest.mark.integration

ORDERS = [f"order-{n}" for n in range(1, 9)]


def send(settings, topic, records):
    producer = make_producer(settings)
    try:
        for key, order_id, event in records:
            producer.send(topic, key=key.encode() if key else None, value=order_event(order_id, event))
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def test_a_keys_events_land_on_its_partition_in_order_and_unkeyed_ones_spread(settings):
    topic = create_topic(settings, "order_events", 6)
    assert create_topic(settings, "order_events", 6) == topic  # idempotent
    send(settings, topic, [(o, o, "placed") for o in ORDERS] + [(o, o, "cancelled") for o in reversed(ORDERS)])
    send(settings, topic, [(None, f"u-{n}", "placed") for n in range(150)])
    events = read_events(settings, topic)
    keyed = events.dropna(subset=["key"])
    assert placement(keyed) == {key: partition_for_key(key, 6) for key in ORDERS}  # the broker agrees with murmur2
    table = events_by_key(keyed)
    assert table["in one partition"].all()
    assert set(table["events (per partition, in offset order)"]) == {"placed → cancelled"}
    assert sorted(set(events[events.key.isna()]["partition"])) == list(range(6))  # every partition got some


def test_a_grown_topic_sends_moved_keys_elsewhere_and_keeps_the_old_records_where_they_were(settings):
    topic = create_topic(settings, "order_events", 6)
    send(settings, topic, [(o, o, "placed") for o in ORDERS])
    assert grow_topic(settings, topic, 8) == 8 and led_partitions(settings, topic) == 8
    with pytest.raises(ValueError, match="cannot shrink"):
        grow_topic(settings, topic, 6)
    with pytest.raises(ValueError, match="exists with 8 partitions"):
        create_topic(settings, "order_events", 6)
    send(settings, topic, [(o, o, "refunded") for o in ORDERS])  # a new producer: it sees 8 partitions
    events = read_events(settings, topic)
    for key in ORDERS:
        mine = events[events.key == key].set_index("event")["partition"]
        assert mine["placed"] == partition_for_key(key, 6) and mine["refunded"] == partition_for_key(key, 8)
    split = ~events_by_key(events)["in one partition"]
    assert sorted(split[split].index) == sorted(k for k in ORDERS if partition_for_key(k, 6) != partition_for_key(k, 8))
