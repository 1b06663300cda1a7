"""Lesson 01's helpers without a broker: key → partition, keys that move when a topic grows, events per key."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orderlab.ordering import EVENT_COLUMNS, customer_keys, customer_orders, events_by_key, key_moves, order_event, placement
from orderlab.peek import partition_for_key


def test_partition_for_key_is_the_java_clients_murmur2():
    # kafka-python's compatibility vectors: what the Java client's partitioner gives with 1000 partitions
    keys = [b"", b"a", b"ab", b"abc", b"123456789", b"\x00 "]
    assert [partition_for_key(key, 1000) for key in keys] == [681, 524, 434, 107, 566, 742]
    assert partition_for_key("abc", 1000) == partition_for_key(b"abc", 1000)


def test_key_moves_recomputes_both_counts_and_a_quarter_of_the_keys_stay():
    moves = key_moves(["order-1", "order-2", "order-1"], 6, 8)
    assert list(moves.index) == ["order-1", "order-2"]  # each key once
    assert moves.loc["order-1"].tolist() == [partition_for_key("order-1", 6), partition_for_key("order-1", 8), True]
    assert moves.loc["order-2", "moves"] == (partition_for_key("order-2", 6) != partition_for_key("order-2", 8))
    many = key_moves((f"key-{n}" for n in range(4000)), 6, 8)
    # hash % 6 == hash % 8 only when hash % 24 < 6: a quarter of the keys stay
    assert 0.22 < 1 - many["moves"].mean() < 0.28
    assert not key_moves(["a", "b"], 6, 6)["moves"].any()


def test_customer_orders_give_the_hot_customer_its_share_and_repeat_with_the_seed():
    orders = customer_orders(orders=2000, customers=20, hot="customer-07", hot_share=0.4, seed=1)
    assert orders == customer_orders(orders=2000, customers=20, hot="customer-07", hot_share=0.4, seed=1)
    customers = pd.Series([customer for customer, _ in orders]).value_counts()
    assert 0.37 < customers["customer-07"] / 2000 < 0.43
    assert set(customers.index) == set(customer_keys(20)) and len({order for _, order in orders}) == 2000
    with pytest.raises(ValueError, match="between 0 and 1"):
        customer_orders(orders=1, customers=2, hot="customer-01", hot_share=2)


def frame(rows):
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def test_events_by_key_lists_each_orders_partitions_and_events_in_offset_order():
    events = frame([
        (3, 1, "o-2", "o-2", "cancelled", None), (3, 0, "o-2", "o-2", "placed", None),
        (1, 0, "o-1", "o-1", "placed", None), (1, 1, "o-1", "o-1", "cancelled", None), (6, 0, "o-1", "o-1", "refunded", None),
    ])
    table = events_by_key(events)
    assert table.loc["o-2"].tolist() == ["3", "placed → cancelled", True]
    assert table.loc["o-1"].tolist() == ["1, 6", "placed → cancelled | refunded", False]
    assert placement(events) == {"o-2": 3, "o-1": 6}


def test_order_event_is_small_json():
    assert json.loads(order_event("o-1", "placed")) == {"order_id": "o-1", "event": "placed"}
    assert json.loads(order_event("o-1", "placed", "customer-01"))["customer_id"] == "customer-01"
