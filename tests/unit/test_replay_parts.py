"""Lesson 10's pure parts: the replay role's declaration, the aggregates compared, the customers table a reader
rebuilds from a (compacted) log, and the retention watch's arithmetic (no Kafka)."""

from __future__ import annotations

import pandas as pd
import pytest

from orderlab import aggregates
from orderlab.replay import REPLAY_ROLE, Replay, aggregates_of, compare_aggregates, read_again, replay_spec
from orderlab.retention import Offsets, RetentionWatch, customers_left, latest_profiles, log_frame, profile_writes
from orderlab.seed import SEED
from orderlab.settings import Settings

SETTINGS = Settings(topic_suffix="-lesson10-0000aaaa")


def test_the_replay_is_the_analytics_role_under_a_name_and_group_of_its_own() -> None:
    spec = replay_spec(SEED)
    analytics = SEED.role("analytics")
    assert spec.name == REPLAY_ROLE and spec.cls is analytics.cls and spec.reads == analytics.reads
    assert spec.group_id(SETTINGS) == "orderlab-analytics_replay-lesson10-0000aaaa" != analytics.group_id(SETTINGS)
    replay = Replay(SETTINGS, SEED)
    assert replay.topology.role_names == (*SEED.role_names, REPLAY_ROLE)
    assert replay.topics == analytics.ports(SETTINGS).topics and replay.group_id == spec.group_id(SETTINGS)
    replay.stop()  # nothing started: nothing to stop


class Frames:
    """Stands in for an AnalyticsBackend: only frames() is read."""

    def __init__(self, orders: list[tuple], items: list[tuple], outcomes: list[tuple]) -> None:
        self.rows = (orders, items, outcomes)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        orders, items, outcomes = self.rows
        return (pd.DataFrame(orders, columns=aggregates.ORDER_COLUMNS), pd.DataFrame(items, columns=aggregates.ITEM_COLUMNS),
                pd.DataFrame(outcomes, columns=aggregates.OUTCOME_COLUMNS))


ORDERS = [("a", 10.0, 11.0, 1500, 2), ("b", 20.0, 21.0, 250, 1)]
ITEMS = [("a", "KB-001", "Keyboard", 2, 1500), ("b", "MS-002", "Mouse", 1, 250)]
OUTCOMES = [("a", True, 10.0, 12.0), ("b", False, 20.0, 22.0)]


def test_aggregates_do_not_depend_on_the_order_records_were_read_in() -> None:
    live = aggregates_of(Frames(ORDERS, ITEMS, OUTCOMES))
    replayed = aggregates_of(Frames(ORDERS[::-1], ITEMS[::-1], OUTCOMES[::-1]))
    assert live == replayed
    assert live["orders"] == 2 and live["order value (sum of totals)"] == 17.5 and live["items sold"] == 3
    assert live["best seller"] == "KB-001" and live["confirmed"] == 1 and live["declined"] == 1 and live["decline rate"] == 0.5
    table = compare_aggregates(live, replayed)
    assert table["same"].all() and table.loc["orders", "live"] == 2


def test_a_replay_that_missed_an_order_is_shown_as_not_the_same() -> None:
    live, short = Frames(ORDERS, ITEMS, OUTCOMES), Frames(ORDERS[:1], ITEMS[:1], OUTCOMES[:1])
    table = compare_aggregates(aggregates_of(live), aggregates_of(short))
    assert not table["same"].all()
    assert table.loc["orders", ["live", "replayed", "same"]].tolist() == [2, 1, False]
    empty = aggregates_of(Frames([], [], []))
    assert empty["orders"] == 0 and empty["best seller"] == "-"


def test_read_again_lists_the_orders_by_creation_time_marking_those_after_the_cutoff() -> None:
    table = read_again(Frames(ORDERS[::-1], ITEMS, OUTCOMES), placed_after=15.0)
    assert table["order_id"].tolist() == ["a", "b"] and table["after the cutoff"].tolist() == [False, True]


def test_profile_writes_are_the_same_every_run_and_end_with_the_tombstones() -> None:
    writes = profile_writes(customers=5, versions=3, deleted=[3])
    assert writes == profile_writes(customers=5, versions=3, deleted=[3])
    assert len(writes) == 16 and writes[-1] == ("c-0003", None)
    cities = [value["city"] for key, value in writes if key == "c-0001" and value]
    assert len(cities) == 3 and len(set(cities)) == 3  # each version moves the customer


def test_the_rebuilt_table_keeps_each_customers_latest_profile_and_drops_the_deleted() -> None:
    writes = profile_writes(customers=5, versions=3, deleted=[3])
    table = latest_profiles(writes)
    assert list(table.index) == ["c-0001", "c-0002", "c-0004", "c-0005"] and (table["version"] == 3).all()
    assert customers_left(writes) == 4
    # a compacted log (the latest record per key, offsets kept) rebuilds the same table
    compacted = [(key, value) for key, value in writes[10:15] if key != "c-0003"] + [writes[15]]
    assert latest_profiles(compacted).equals(table)
    # a customer deleted, then back
    assert customers_left([*writes, ("c-0003", {"customer_id": "c-0003", "city": "Graz", "version": 4})]) == 5
    assert latest_profiles([("c-0001", None)]).empty and customers_left([]) == 0


def test_the_log_table_shows_a_tombstone_as_such() -> None:
    frame = log_frame([(7, "c-0001", {"customer_id": "c-0001", "city": "Graz", "version": 2}), (9, "c-0001", None)])
    assert frame.loc[7, "value"] == "city=Graz, version=2" and frame.loc[9, "value"] == "(tombstone: deleted)"


def test_the_retention_watch_counts_each_move_of_the_first_offset_as_a_deleted_segment() -> None:
    watch = RetentionWatch(SETTINGS, retention_ms=20_000, segment_ms=5_000)
    assert watch.topic == "ticks-lesson10-0000aaaa" and watch.config == {"retention.ms": "20000", "segment.ms": "5000"}
    watch.observations = [Offsets(1, 0, 5), Offsets(2, 0, 10), Offsets(3, 25, 30), Offsets(4, 25, 35), Offsets(5, 50, 40)]
    assert [move.seconds for move in watch.moves()] == [3, 5] and watch.moves()[0].kept == 5
    with pytest.raises(RuntimeError, match="not started"):
        watch.sample()
    with pytest.raises(ValueError, match="below retention_ms"):
        RetentionWatch(SETTINGS, retention_ms=5_000, segment_ms=5_000)
    with pytest.raises(ValueError, match="rate must be > 0"):
        RetentionWatch(SETTINGS, rate=0)
