"""The control room's partition table against a real broker: the owners it
shows are the group's assignment as the broker describes it, its offsets are
the group's committed and end offsets, and its lags add up to the group lag."""

from __future__ import annotations

import time

import pytest
from kafka.errors import KafkaError

from orderlab.lab import Lab
from orderlab.lag import LagMeter
from orderlab.peek import committed_offsets, describe_group, wait_for_assignment
from orderlab.ui import ControlRoom
from orderlab.ui.partitions import lab_holders, partition_rows

from waiting import wait_for

pytestmark = pytest.mark.integration


def table(lab: Lab) -> tuple[object, list]:
    """A snapshot and the partition table's rows made from it and the workers' holdings, as a frame does."""
    snapshot = lab.snapshot()
    return snapshot, partition_rows(snapshot.offsets, lab_holders(lab), topic_suffix=lab.settings.topic_suffix)


def owners(rows: list, group: str) -> dict[str, list[int]]:
    """``{owner: [partitions]}`` of one group's rows."""
    found: dict[str, list[int]] = {}
    for row in rows:
        if row.group == group:
            found.setdefault(row.owner, []).append(int(row.partition))
    return found


def broker_shares(description: dict) -> list[list[int]]:
    return sorted(sorted(parts) for parts in description["assignment"].values() if parts)


def owners_match_the_broker(lab: Lab, members: int) -> bool:
    try:
        description = describe_group(lab.settings, lab.settings.group_id("transactions"))
    except KafkaError as exc:  # a coordinator not there yet, on a fresh broker: look again
        if exc.retriable:
            return False
        raise
    shown = owners(table(lab)[1], "transactions")
    return (description["state"] == "Stable" and len(description["assignment"]) == members
            and sorted(sorted(parts) for parts in shown.values()) == broker_shares(description)
            and set(shown) <= {worker.name for worker in lab.workers})


def test_the_table_shows_the_brokers_assignment_and_offsets_and_adds_up_to_the_group_lag(settings):
    group = settings.group_id("transactions")
    with Lab(settings, rate=0, workers=2, payment_latency_ms=40, consumer_config={"max_poll_records": 20}) as lab:
        wait_for_assignment(settings, group, members=2)
        # each worker records what it holds after its next poll: bounded, a poll lasts 100 ms when idle
        assert wait_for(lambda: owners_match_the_broker(lab, 2), timeout=30), (table(lab)[1], describe_group(settings, group))

        lab.generate(300, rate=600)  # 2 workers at 40 ms settle 50/s: transactions falls behind
        snapshot, rows = table(lab)
        broker = committed_offsets(settings, group, settings.order_details_topic)
        _, later = table(lab)
        for group_id, behind in snapshot.lag.items():
            short = group_id.removeprefix("orderlab-").split("-", 1)[0]
            assert sum(row.lag for row in rows if row.group == short) == behind
        assert snapshot.lag[group] > 0 and sum(snapshot.lag.values()) == sum(row.lag for row in rows)
        first = {int(r.partition): r for r in rows if r.group == "transactions"}
        second = {int(r.partition): r for r in later if r.group == "transactions"}
        assert sorted(first) == list(broker.index) == list(range(settings.order_details_partitions))
        for partition, seen in broker.iterrows():
            # the broker was asked between the two readings, and offsets only grow
            assert (first[partition].committed or 0) <= seen.committed <= (second[partition].committed or 0)
            assert first[partition].end <= seen.end <= second[partition].end
        assert [r.topic for r in rows if r.group == "analytics"] == ["order_details", "order_confirmed", "order_declined"]
        assert {r.owner for r in rows if r.group in ("email", "analytics")} == {"email", "analytics"}

        lab.scale_transactions(3)
        wait_for_assignment(settings, group, members=3)
        assert wait_for(lambda: owners_match_the_broker(lab, 3), timeout=60), (table(lab)[1], describe_group(settings, group))

        lab.set_payment_latency_ms(0)
        meter = LagMeter(settings)
        try:
            # every group settled, not transactions only: analytics reads the replies after transactions
            # wrote them, so it can still be a few records behind when transactions reaches 0
            assert wait_for(lambda: not any(lab.snapshot().lag.values()), timeout=60)
            # settled: an independent meter (clients of its own) reads what the table shows
            assert meter.lag(lab.topology.lag_groups(settings)) == table(lab)[0].lag
        finally:
            meter.close()


def test_the_control_room_draws_the_table_of_a_running_lab(settings):
    lab = Lab(settings, rate=50, workers=2)
    room = ControlRoom(lab, interval_s=0.5)
    try:
        assert room.start()
        group = settings.group_id("transactions")
        wait_for_assignment(settings, group, members=2)
        assert wait_for(lambda: set(room.partition_table().query("group == 'transactions'").owner)
                        == {"transactions-0", "transactions-1"}, timeout=30), room.table.value
        frame = room.partition_table()
        assert len(frame) == settings.order_details_partitions * 2 + 3  # transactions and e-mail per partition, analytics per topic
        assert "transactions · order_details · lag" in room.table.value
        time.sleep(1.0)
        assert room.refresher.errors == 0, room.status.value
    finally:
        room.rate.value = 0
        room.stop()


def test_the_scaled_roles_batches_are_set_apart_from_the_other_roles(settings):
    """Lesson 05 keeps the transactions workers' batches small (short rebalances); e-mail keeps its full polls."""
    with Lab(settings, rate=0, workers=2, consumer_config={"session_timeout_ms": 9000},
             scaled_consumer_config={"max_poll_records": 20}) as lab:
        assert wait_for(lambda: all(w._consumer is not None for w in lab.workers) and lab.email._consumer is not None,
                        timeout=30)
        for worker in lab.workers:
            assert worker.consumer.config["max_poll_records"] == 20
            assert worker.consumer.config["session_timeout_ms"] == 9000
        assert lab.email.consumer.config["max_poll_records"] == 500
        assert lab.email.consumer.config["session_timeout_ms"] == 9000
