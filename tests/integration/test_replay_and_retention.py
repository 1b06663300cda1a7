"""Lesson 10 on a real broker: a replay group rebuilds the live aggregates, a group reset to a timestamp reads only
what came after, an expired segment is deleted, and compaction keeps the latest profile per customer."""

from __future__ import annotations

import time

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from orderlab.clients import make_consumer
from orderlab.lab import Lab
from orderlab.lessons import drain
from orderlab.replay import Replay, aggregates_of, compare_aggregates, read_again, records_since
from orderlab.retention import (
    RETENTION_CHECK_SETTING, CustomersTopic, RetentionWatch, broker_ms, latest_profiles, profile_writes,
)
from orderlab.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_replay_rebuilds_the_aggregates_and_a_reset_to_a_timestamp_reads_only_what_came_after(settings: Settings) -> None:
    lab = Lab(settings, rate=0, workers=1)
    replay = Replay(settings)
    try:
        lab.start()
        lab.generate(30, rate=100)
        drain(lab, 60)
        cutoff = time.time()
        time.sleep(0.5)
        lab.generate(10, rate=100)
        drain(lab, 60)

        replayed = replay.start()
        assert replay.wait_caught_up(60)
        comparison = compare_aggregates(aggregates_of(lab.analytics), aggregates_of(replayed))
        assert comparison["same"].all() and comparison.loc["orders", "replayed"] == 40
        replay.stop()

        consumer = make_consumer(settings, replay.group_id)
        try:
            partitions = [TopicPartition(t, p) for t in replay.topics for p in sorted(consumer.partitions_for_topic(t))]
            found = consumer.offsets_for_times({tp: int(cutoff * 1000) for tp in partitions})
            ends = consumer.end_offsets(partitions)
            consumer.commit({tp: OffsetAndMetadata(found[tp].offset if found[tp] else ends[tp], "", -1) for tp in partitions})
        finally:
            consumer.close()
        again = replay.start()
        assert replay.wait_caught_up(60)
        orders = read_again(again, placed_after=cutoff)
        assert len(orders) == 10 and orders["after the cutoff"].all()
        assert records_since(settings, replay.topics, int(cutoff * 1000)) == again.counters["consumed"] == 20
    finally:
        replay.close()
        lab.stop()


def test_an_expired_segment_is_deleted_and_the_first_offset_moves(settings: Settings) -> None:
    interval = broker_ms(settings, RETENTION_CHECK_SETTING)
    if interval is None or interval > 10_000:
        pytest.skip(f"this broker checks retention every {interval} ms: restart it so it runs with orderlab's 5 s")
    watch = RetentionWatch(settings, retention_ms=4_000, segment_ms=1_000, rate=20).start()
    table = watch.table(interval_s=0.5).start()
    try:
        moves = watch.wait_for_deletions(1, timeout_s=60)
    finally:
        table.stop()
        watch.stop()
    assert moves and moves[0].first > 0 and moves[0].next > moves[0].first
    assert table.last is not None and int(table.last[0]["first offset"].iloc[0]) >= moves[0].first
    assert watch.written >= moves[0].next


def test_compaction_keeps_the_latest_profile_of_each_customer_and_a_tombstone_removes_one(settings: Settings) -> None:
    customers = CustomersTopic(settings).create()
    writes = profile_writes(customers=4, versions=3, deleted=[2])
    assert customers.write(writes) == len(writes)
    assert [offset for offset, _, _ in customers.read()] == list(range(len(writes)))
    signup = ("c-0009", {"customer_id": "c-0009", "city": "Graz", "version": 1})
    customers.close_segment(signup)
    compacted, log = customers.wait_for_compaction(timeout_s=90)
    assert compacted, f"still {len(log)} records after 90 s"
    assert len(log) < len(writes)  # records were dropped
    rebuilt = latest_profiles([(key, value) for _, key, value in log])
    assert rebuilt.equals(latest_profiles([*writes, signup])) and "c-0002" not in rebuilt.index
    assert log[-1][1:] == signup  # the active segment is never cleaned
