"""The at-most-once worker of lesson 08 (commit first, then the work), over fake clients, and the table
of the three modes. The same crash against a real broker is ``tests/integration/test_delivery_modes.py``."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

import fakes
from orderlab.chaos import ScenarioResult
from orderlab.delivery import (
    AT_MOST_ONCE, AT_MOST_ONCE_TOPOLOGY, CommitFirstTransactions, delivery_table, mode_settings, outcome_records,
)
from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.ledger import Ledger
from orderlab.settings import Settings, SettingsError
from orderlab.topology import load_topology
from orderlab.wiring import Wiring

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_suffix="-unit", connect_timeout_s=2)


def wait(condition, seconds: float = 5.0) -> bool:  # noqa: ANN001
    pause = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return condition()


def put_orders(broker: fakes.FakeBroker, count: int) -> list[str]:
    factory = OrderFactory(seed=3, customers=4)
    ids = []
    for _ in range(count):
        order = factory.make()
        broker.append("order_details-unit", order.order_id.encode(), encode_order(order))
        ids.append(order.order_id)
    return ids


def outcome_keys(broker: fakes.FakeBroker) -> list[bytes | None]:
    return [r.key for topic in ("order_confirmed-unit", "order_declined-unit") for r in broker.records(topic)]


def test_the_at_most_once_topology_is_the_seed_with_the_commit_first_worker() -> None:
    assert load_topology(AT_MOST_ONCE_TOPOLOGY) is AT_MOST_ONCE
    assert AT_MOST_ONCE.role("transactions").cls is CommitFirstTransactions
    assert [r.name for r in AT_MOST_ONCE.roles] == ["orders", "transactions", "email", "analytics"]
    assert mode_settings("at-most-once", SETTINGS).topology == AT_MOST_ONCE_TOPOLOGY
    assert mode_settings("exactly-once", SETTINGS).exactly_once and mode_settings("at-least-once", SETTINGS).topology == "seed"
    with pytest.raises(ValueError, match="unknown delivery mode"):
        mode_settings("twice", SETTINGS)


def test_a_crash_after_the_commit_loses_the_rest_of_the_batch_and_nothing_is_done_twice(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    placed = put_orders(broker, 20)
    settings = SETTINGS.with_(topology=AT_MOST_ONCE_TOPOLOGY)
    ledger = Ledger(str(tmp_path / "ledger.db"))
    wiring = Wiring(settings, AT_MOST_ONCE, ledger=ledger)
    try:
        worker = wiring.service("transactions")
        worker.crash(min_records=3)  # with after_send: half the batch done, then the kill
        worker.start()
        assert wait(lambda: not worker.alive)
        batch = worker.counters["crash_batch_records"]
        assert batch == 20 and worker.counters["crashes"] == 1
        assert sum(broker.committed["orderlab-transactions-unit"].values()) == 20  # committed before it was done
        assert len(outcome_keys(broker)) == batch // 2

        with wiring.service("transactions") as replacement:  # carries on from the committed offsets
            assert wait(lambda: replacement.partitions > 0)
            threading.Event().wait(0.2)  # a few more polls: none finds a record
            assert replacement.counters["consumed"] == 0
        answered = outcome_keys(broker)
        assert len(answered) == len(set(answered)) == batch // 2  # nothing answered twice
        assert len(set(placed) - {key.decode() for key in answered if key}) == 20 - batch // 2  # the rest is lost
        assert ledger.double_charged() == 0
    finally:
        wiring.close()
        ledger.close()


def test_without_after_send_the_whole_committed_batch_is_lost(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    put_orders(broker, 6)
    wiring = Wiring(SETTINGS.with_(topology=AT_MOST_ONCE_TOPOLOGY), AT_MOST_ONCE, ledger=Ledger(str(tmp_path / "l.db")))
    try:
        worker = wiring.service("transactions")
        worker.crash(after_send=False)
        worker.start()
        assert wait(lambda: not worker.alive)
        assert outcome_keys(broker) == [] and sum(broker.committed["orderlab-transactions-unit"].values()) == 6
    finally:
        wiring.close()


def test_at_most_once_refuses_exactly_once() -> None:
    with pytest.raises(SettingsError, match="cannot run with exactly_once"):
        CommitFirstTransactions(SETTINGS.with_(exactly_once=True), AT_MOST_ONCE.role("transactions"), ledger=None)


def result(lost: int, duplicates: int, *, exactly_once: bool = False) -> ScenarioResult:
    return ScenarioResult("worker_crash", 100, lost, 0, 0, 0, 0, duplicates, exactly_once, not lost, 1.0, "")


def test_the_table_has_one_row_per_mode() -> None:
    table = delivery_table({"at-most-once": result(5, 0), "at-least-once": result(0, 4),
                            "exactly-once": result(0, 0, exactly_once=True)})
    assert list(table.index) == ["at-most-once", "at-least-once", "exactly-once"]
    assert table[["lost", "duplicated"]].to_dict("index") == {
        "at-most-once": {"lost": 5, "duplicated": 0}, "at-least-once": {"lost": 0, "duplicated": 4},
        "exactly-once": {"lost": 0, "duplicated": 0},
    }
    assert isinstance(table, pd.DataFrame) and table.loc["at-least-once", "orders"] == 100


def test_an_isolation_level_is_one_of_kafkas_two() -> None:
    with pytest.raises(ValueError, match="read_committed, read_uncommitted"):
        outcome_records(SETTINGS, "read_dirty")
