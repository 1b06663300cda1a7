"""The same worker crash in the three delivery modes (orderlab.delivery), against a real broker: at-most-once
loses orders and duplicates none, at-least-once duplicates and loses none, exactly-once does neither; and an
aborted transaction is seen by a read_uncommitted reader only."""

from __future__ import annotations

import pytest

from orderlab.clients import make_consumer, make_producer
from orderlab.delivery import MODES, crash_in_mode, delivery_table, outcome_records
from orderlab.loops import place_orders, take_payment
from orderlab.peek import committed_offsets
from orderlab.services.records import next_offsets
from orderlab.settings import Settings
from orderlab.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_the_same_crash_loses_duplicates_or_neither_by_mode(settings: Settings) -> None:
    runs = {mode: crash_in_mode(mode, orders=80, rate=100, settings=settings) for mode in MODES}
    table = delivery_table(runs)
    print(table)
    for mode, run in runs.items():
        assert run.extra["crashed_batch_records"] >= 3, (mode, run.detail)
        assert run.double_charged == 0 and run.double_emailed == 0, (mode, run.detail)
    assert table.loc["at-most-once", "lost"] > 0 and table.loc["at-most-once", "duplicated"] == 0
    assert table.loc["at-least-once", "lost"] == 0 and table.loc["at-least-once", "duplicated"] > 0
    assert table.loc["exactly-once", "lost"] == 0 and table.loc["exactly-once", "duplicated"] == 0
    assert not runs["at-most-once"].passed and runs["at-least-once"].passed and runs["exactly-once"].passed


def test_an_aborted_transaction_is_seen_by_a_read_uncommitted_reader_only(settings: Settings) -> None:
    ensure_topics(settings)
    place_orders(settings, 12, seed=4)
    consumer = make_consumer(settings, settings.group_id("transactions"), settings.order_details_topic,
                             isolation_level="read_committed")
    producer = make_producer(settings, transactional_id=f"test-abort{settings.topic_suffix}")
    try:
        producer.init_transactions()
        records = []
        for _ in range(30):  # the first polls join the group
            records = [r for batch in consumer.poll(timeout_ms=1000).values() for r in batch]
            if records:
                break
        for abort in (True, False):  # the same batch twice: aborted, then committed
            producer.begin_transaction()
            for record in records:
                topic, outcome = take_payment(settings, record.value)
                producer.send(topic, key=record.key, value=outcome)
            producer.send_offsets_to_transaction(next_offsets(records), consumer.group_metadata())
            if abort:
                producer.flush()  # an abort drops the outcomes the producer has not sent yet; all must reach the log
                producer.abort_transaction()
            else:
                producer.commit_transaction()
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)
    assert records
    assert outcome_records(settings, "read_committed") == len(records)
    assert outcome_records(settings, "read_uncommitted") == 2 * len(records)
    committed = committed_offsets(settings, settings.group_id("transactions"), settings.order_details_topic)
    assert committed.committed.sum() == len(records)  # the offsets came with the committed transaction only
