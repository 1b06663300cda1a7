"""Lesson 09's pure parts: the timed orders, the partitions rows, the acks table and the class-size scaling (no Kafka)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from orderlab.broker.metadata import PartitionState
from orderlab.failover import TIMED_ORDERS, AckTimedOrders, acks_table, kills_for_this_run, missing_with, partition_rows
from orderlab.seed import SEED
from orderlab.settings import Settings


def test_timed_orders_is_the_seed_with_an_orders_backend_that_times_acknowledgements() -> None:
    assert TIMED_ORDERS.role("orders").cls is AckTimedOrders
    assert TIMED_ORDERS.role_names == SEED.role_names and TIMED_ORDERS.topics == SEED.topics
    assert all(TIMED_ORDERS.role(name) == SEED.role(name) for name in SEED.role_names if name != "orders")
    orders = AckTimedOrders(Settings(topic_suffix="-lesson09-0000aaaa"), TIMED_ORDERS.role("orders"))
    for partition in (0, 2, 0):
        orders._acked(SimpleNamespace(partition=partition))
    assert len(orders.ack_times(0)) == 2 and len(orders.ack_times(2)) == 1 and orders.ack_times(5) == []
    assert orders.ack_times(0) == sorted(orders.ack_times(0)) and orders.counters["acknowledged"] == 3


def test_partition_rows_are_indexed_by_partition_with_the_preferred_leader_first_in_replicas() -> None:
    rows = partition_rows([PartitionState("t", 1, 3, (3, 1, 2), (1, 3), (2,)), PartitionState("t", 0, None, (2, 3, 1), ())])
    assert list(rows.index) == [0, 1] and list(rows.columns) == ["leader", "replicas", "isr", "offline"]
    assert rows.loc[1, "replicas"][0] == 3 and rows.loc[1, "offline"] == (2,) and pd.isna(rows.loc[0, "leader"])


def runs() -> pd.DataFrame:
    rows = []
    for run, (lost_1, stall) in enumerate([(0, 3.0), (12, 4.0), (0, 5.0)], start=1):
        for acks, missing in (("1", lost_1), ("all", 0)):
            rows.append({"run": run, "acks": acks, "acknowledged": 1000, "missing": missing, "killed_controller": run == 2,
                         "stall_s": stall, "election_s": stall - 0.5, "rejoin_s": 20.0})
    return pd.DataFrame(rows)


def test_the_acks_table_has_a_row_per_setting_with_the_counts_over_the_kills() -> None:
    table = acks_table(runs())
    assert table.index.name == "producer setting (RF 3, min.insync.replicas=2)"
    assert list(table.index) == ["acks=1 (the leader alone confirms)", "acks=all (every in-sync replica confirms)"]
    assert table["kills"].tolist() == [3, 3] and table["acknowledged"].tolist() == [3000, 3000]
    assert table["missing when read back"].tolist() == [12, 0] and table["kills that lost records"].tolist() == [1, 0]
    assert table["median stall (s)"].tolist() == [4.0, 4.0]
    assert missing_with(runs(), "1") == 12 and missing_with(runs(), "all") == 0
    with pytest.raises(ValueError, match="no kill with acks=0"):
        missing_with(runs(), "0")


def test_a_class_kills_ten_times_and_a_test_run_a_tenth_as_often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERLAB_TEST_MODE", raising=False)
    assert kills_for_this_run(10) == 10
    monkeypatch.setenv("ORDERLAB_TEST_MODE", "1")
    assert kills_for_this_run(10) == 1 and kills_for_this_run(30) == 3 and kills_for_this_run(3) == 1
    with pytest.raises(ValueError, match="at least 1"):
        kills_for_this_run(0)
