"""What the lessons call, against a real broker: Lab.generate and friends,
looking into topics and groups (orderlab.peek), the lesson helpers, and the
control room driving a real Lab."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orderlab.lab import Lab
from orderlab.lessons import (
    FAST_FAILOVER, create_topics, drain, inject_records, lesson_settings, reset_classroom, wait_for_lag,
)
from orderlab.peek import committed_offsets, describe_group, partition_for_key, partition_sizes, read_records, wait_for_assignment
from orderlab.ui import ControlRoom, order_payload

pytestmark = pytest.mark.integration


def test_generate_places_exactly_the_count_and_restores_the_rate(settings):
    with Lab(settings, rate=0, workers=1) as lab:
        assert lab.worker_count == 1
        snapshot = lab.generate(120, rate=400)
        assert snapshot.placed == 120
        time.sleep(0.3)  # nothing more may trickle out after the call
        assert lab.snapshot(with_lag=False).placed == 120 and lab.rate == 0
        final = drain(lab, timeout_s=60)
        assert final.settled == 120
        # revenue: the confirmed orders only
        assert lab.revenue_cents() == sum(read_records(settings, settings.order_confirmed_topic).total.mul(100).round().astype(int))
        with pytest.raises(ValueError):
            lab.generate(10, rate=0)


def test_records_land_on_the_partition_their_key_hashes_to(settings):
    create_topics(settings)
    with Lab(settings, rate=0, workers=1) as lab:
        keys = [f"key-{n}" for n in range(12)]
        for key in keys:
            assert lab.place(order_payload(["KB-001"], 1, "a@example.com", order_id=key)).accepted
        records = read_records(settings, settings.order_details_topic).set_index("key")
        for key in keys:
            assert records.loc[key, "partition"] == partition_for_key(key, settings.order_details_partitions)
        assert partition_sizes(settings, settings.order_details_topic).records.sum() == len(keys)
        drain(lab, timeout_s=30)
        caught_up, lags = wait_for_lag(lab, "transactions", below=1, timeout_s=30)
        assert caught_up, lags
        offsets = committed_offsets(settings, settings.group_id("transactions"), settings.order_details_topic)
        assert offsets.committed.sum() == len(keys) and offsets.lag.sum() == 0


def test_group_assignment_follows_scaling(settings):
    with Lab(settings, rate=0, workers=1, consumer_config=FAST_FAILOVER) as lab:
        group = settings.group_id("transactions")
        description, _ = wait_for_assignment(settings, group, members=1)
        assert sorted(sum(description["assignment"].values(), [])) == list(range(settings.order_details_partitions))
        lab.scale_transactions(3)
        description, states = wait_for_assignment(settings, group, members=3)
        assert description["state"] == "Stable", states
        assert sorted(len(parts) for parts in description["assignment"].values()) == [1, 1, 2]  # 4 partitions
    assert describe_group(settings, group)["assignment"] == {}


def test_poison_records_are_dead_lettered_by_both_readers(settings):
    with Lab(settings, rate=0, workers=1) as lab:
        assert inject_records(lab, [("bad-1", b"not json"), ("bad-2", None)]) == 2
        snapshot = lab.wait_until(lambda s: s.dead_lettered >= 4, timeout=30)
        assert snapshot.dead_lettered == 4
        roles = sorted((letter.key, letter.role) for letter in lab.dead_letters())
        assert roles == [(b"bad-1", "analytics"), (b"bad-1", "transactions"), (b"bad-2", "analytics"), (b"bad-2", "transactions")]


def test_control_room_drives_a_real_lab(settings):
    lab = Lab(settings, rate=0, workers=1)
    room = ControlRoom(lab, interval_s=0.5)
    try:
        assert room.start()
        room.rate.value = 200
        lab.wait_until(lambda s: s.placed >= 300, timeout=30)
        deadline = time.monotonic() + 15
        while room.measured_rate() < 100 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert room.measured_rate() >= 100
        assert room.measured.value.startswith("measured: ")
        first = room.png()
        room.workers.value = 2
        assert lab.worker_count == 2
        deadline = time.monotonic() + 10
        while room.png() == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert room.png() != first
        assert room.refresher.errors == 0, room.status.value
    finally:
        room.rate.value = 0
        room.stop()
    assert not lab.running and room.status.value.startswith("stopped")


def test_reset_classroom_removes_finished_runs_only(kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    finished = lesson_settings("lesson99")
    running = lesson_settings("lesson99")
    with Lab(finished, rate=10, workers=1, limit=5) as lab:
        drain(lab, timeout_s=30)
    with Lab(running, rate=0, workers=1):
        listed = reset_classroom(running, dry_run=True).set_index("run")
        assert not listed.removed.any()
        removed = reset_classroom(running).set_index("run")
        assert removed.loc[finished.topic_suffix.lstrip("-"), "removed"]
        assert not removed.loc[running.topic_suffix.lstrip("-"), "removed"]
    from orderlab.clients import make_admin

    admin = make_admin(finished)
    try:
        deadline = time.monotonic() + 30
        while any(t.endswith(finished.topic_suffix) for t in admin.list_topics()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(finished.topic_suffix in t for t in admin.list_topics())
        assert any(running.topic_suffix in t for t in admin.list_topics())
    finally:
        admin.close()
    # once stopped, the other run goes too (its groups empty out within a few seconds)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        swept = reset_classroom(running).set_index("run")
        if running.topic_suffix.lstrip("-") not in swept.index or swept.loc[running.topic_suffix.lstrip("-"), "removed"]:
            break
        time.sleep(1)
    else:
        raise AssertionError("the stopped run was never removed")
    assert not Path(running.db_path).exists()
