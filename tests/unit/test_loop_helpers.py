"""Lesson 02's plain-loop helpers without a broker: the work of one record, when the loop is caught up, the kill."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from fakes import FakeBroker
from orderlab.catalogue import BY_SKU
from orderlab.events import EventError, LineItem, Order, decode_confirmed, decode_declined, encode_order
from orderlab.generator import OrderFactory
from orderlab.loops import ProcessKilled, caught_up, kill, take_payment
from orderlab.settings import Settings

SETTINGS = Settings(topic_suffix="-lesson02_loop-1a2b3c4d")


def test_take_payment_answers_each_order_the_same_way_every_time():
    factory = OrderFactory(seed=4, customers=5)
    orders = [factory.make() for _ in range(200)]
    first = [take_payment(SETTINGS, encode_order(order)) for order in orders]
    again = [take_payment(SETTINGS, encode_order(order)) for order in orders]
    assert [topic for topic, _ in first] == [topic for topic, _ in again]
    topics = {topic for topic, _ in first}
    assert topics == {SETTINGS.order_confirmed_topic, SETTINGS.order_declined_topic}
    declined = sum(topic == SETTINGS.order_declined_topic for topic, _ in first)
    assert 20 <= declined <= 65  # one in five, of 200
    topic, value = first[0]
    decode = decode_confirmed if topic == SETTINGS.order_confirmed_topic else decode_declined
    assert decode(value).order == orders[0]


def test_take_payment_declines_an_order_over_the_card_limit_and_refuses_a_bad_record():
    chair = BY_SKU["CH-012"]
    big = Order.create("big-1", "c-1", "a@example.com", [LineItem(chair.sku, chair.name, 30, chair.price_cents)])
    topic, value = take_payment(SETTINGS, encode_order(big))
    assert topic == SETTINGS.order_declined_topic and decode_declined(value).reason == "over_card_limit"
    with pytest.raises(EventError):
        take_payment(SETTINGS, b"not json")


def test_caught_up_once_the_consumer_holds_partitions_and_read_each_to_its_end():
    broker = FakeBroker()
    for number in range(4):
        broker.append("t", f"k{number}".encode(), b"{}")
    consumer = broker.make_consumer(SETTINGS, "g", "t")
    consumer.end_offsets = lambda tps: {tp: len(broker.logs[tp]) for tp in tps}
    consumer.position = lambda tp, timeout_ms=None: consumer.positions.get(tp, 0)
    assert consumer.assignment() and not caught_up(consumer)
    consumer.poll()
    assert caught_up(consumer)
    broker.append("t", b"k9", b"{}")
    assert not caught_up(consumer)
    consumer.close()
    assert not caught_up(consumer)  # no partitions held: not caught up, whatever the positions


def test_kill_delivers_what_was_sent_then_drops_both_clients_and_raises():
    broker = FakeBroker()
    consumer, producer = broker.make_consumer(SETTINGS, "g", "t"), broker.make_producer(SETTINGS)
    flushed = []
    producer.flush = lambda timeout=None: flushed.append(timeout)
    with pytest.raises(ProcessKilled, match="run it again"):
        kill(consumer, producer)
    assert flushed and consumer.closed and producer.closed and broker.committed["g"] == {}
    assert TopicPartition("t", 0) not in consumer.assignment()
