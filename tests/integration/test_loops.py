"""Lesson 02's plain loop against a real broker: caught up, killed mid-batch, restarted; what delivery() reads back."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer

from orderlab.clients import security_config
from orderlab.loops import ProcessKilled, caught_up, delivery, kill, place_orders, take_payment
from orderlab.peek import read_records
from orderlab.topics import ensure_topics

pytestmark = pytest.mark.integration


def plain_loop(settings, *, crash_after=None, commit_first=False):
    """The lesson's loop, with the commit where ``commit_first`` says."""
    consumer = KafkaConsumer(
        settings.order_details_topic, group_id=settings.group_id("transactions"),
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=10, session_timeout_ms=6000, **security_config(settings))
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True,
                             **security_config(settings))
    handled = 0
    while not caught_up(consumer):
        batch = consumer.poll(timeout_ms=1000)
        records = [record for partition in batch.values() for record in partition]
        if commit_first:
            consumer.commit()
        for record in records:
            topic, outcome = take_payment(settings, record.value)
            producer.send(topic, key=record.key, value=outcome)
            handled += 1
            if handled == crash_after:
                kill(consumer, producer)
        producer.flush()
        if not commit_first:
            consumer.commit()
    consumer.close()
    producer.close()
    return handled


def counted_by_hand(settings):
    placed = set(read_records(settings, settings.order_details_topic).key)
    outcomes = [*read_records(settings, settings.order_confirmed_topic).key, *read_records(settings, settings.order_declined_topic).key]
    return len(placed - set(outcomes)), len(outcomes) - len(set(outcomes))


def test_the_loop_reads_everything_once_and_a_kill_loses_or_repeats_as_the_commit_decides(settings):
    ensure_topics(settings)
    assert len(place_orders(settings, 25, seed=1)) == 25
    assert plain_loop(settings) == 25
    clean = delivery(settings)
    assert (clean.placed, clean.answered, clean.lost, clean.duplicates, clean.unread) == (25, 25, 0, 0, 0)

    place_orders(settings, 25, seed=2)
    with pytest.raises(ProcessKilled):
        plain_loop(settings, crash_after=3, commit_first=True)
    assert delivery(settings).unread > 0
    plain_loop(settings, commit_first=True)  # the restart waits out the dead member's session
    at_most_once = delivery(settings)
    assert at_most_once.lost > 0 and at_most_once.duplicates == 0 and at_most_once.unread == 0
    assert counted_by_hand(settings) == (at_most_once.lost, 0)

    place_orders(settings, 25, seed=3)
    with pytest.raises(ProcessKilled):
        plain_loop(settings, crash_after=3)
    plain_loop(settings)
    at_least_once = delivery(settings)
    assert at_least_once.lost == at_most_once.lost  # nothing more lost
    # those of the killed batch handled before the kill (all three when it was the first batch) are answered again
    assert 1 <= at_least_once.duplicates <= 3
    assert counted_by_hand(settings) == (at_least_once.lost, at_least_once.duplicates)
    assert at_least_once.placed == 75
    assert at_least_once.outcome_records == 75 - at_least_once.lost + at_least_once.duplicates
