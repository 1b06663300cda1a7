"""``orderlab run ROLE`` as real processes against a real broker.

What a deployment relies on: processes of one role share a consumer group's
partitions and together handle every order once in effect; SIGTERM (what
Docker and Kubernetes send) or Ctrl-C drains the batch in hand, commits and
exits 0 well inside Docker's 10 s grace period, so a restarted process neither
loses nor repeats work; the orders role produces at the rate it is given and
every order it counts is in the topic.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import pytest
from roleproc import (
    RoleProcess,
    committed_offsets,
    group_lag,
    paid_order_ids,
    place_orders,
    record_positions,
    wait_until,
)

from orderlab.clients import make_admin
from orderlab.ledger import Ledger
from orderlab.reconcile import read_topic_keys
from orderlab.settings import Settings

pytestmark = pytest.mark.integration

GRACE_S = 10.0  # Docker's default grace period before SIGKILL (Kubernetes gives 30 s)


def group_members(settings: Settings, role: str) -> list[list[int]]:
    """The partitions of ``order_details`` each member of the role's group holds, once the group is stable."""
    admin = make_admin(settings)
    try:
        group = admin.describe_groups([settings.group_id(role)])[settings.group_id(role)]
    finally:
        admin.close()
    if group["group_state"] != "Stable":
        return []
    held = []
    for member in group["members"]:
        assignment = member["member_assignment"] or {}
        held.append(sorted(
            number
            for entry in assignment.get("assigned_partitions", [])
            if entry["topic"] == settings.order_details_topic
            for number in entry["partitions"]
        ))
    return held


def assert_each_order_settled_once(settings: Settings, order_ids: set[str]) -> None:
    """Every order has exactly one outcome record, and no order was charged twice."""
    confirmed = read_topic_keys(settings, settings.order_confirmed_topic)
    declined = read_topic_keys(settings, settings.order_declined_topic)
    assert set(confirmed) | set(declined) == order_ids
    assert not set(confirmed) & set(declined), "an order was both confirmed and declined"
    assert len(confirmed) + len(declined) == len(order_ids), "an outcome was produced twice"
    ledger = Ledger(settings.db_path)
    try:
        assert ledger.double_charged() == 0
        assert ledger.charge_count() == len(confirmed)
    finally:
        ledger.close()


def test_two_transactions_processes_share_the_partitions_and_settle_each_order_once(
    proc_settings: Settings, spawn
) -> None:
    first = spawn("transactions", "--interval", "1")
    second = spawn("transactions", "--interval", "1")
    first.wait_running()
    second.wait_running()
    # both members hold partitions before any order arrives
    holdings: list[list[int]] = []

    def both_hold_partitions() -> bool:
        holdings[:] = group_members(proc_settings, "transactions")
        return len(holdings) == 2 and all(holdings)

    wait_until(both_hold_partitions, 60, "two group members holding partitions", first, second)
    assert sorted(p for held in holdings for p in held) == list(range(proc_settings.order_details_partitions))

    order_ids = set(place_orders(proc_settings, 400))
    wait_until(lambda: len(paid_order_ids(proc_settings)) == len(order_ids), 90, "every order paid", first, second)
    wait_until(lambda: group_lag(proc_settings, "transactions") == 0, 30, "lag 0", first, second)

    # one stopped as Docker does, the other as a person at the terminal does
    assert first.stop(signal.SIGTERM, GRACE_S) == 0, first.log_text()
    assert second.stop(signal.SIGINT, GRACE_S) == 0, second.log_text()

    finals = [process.final_counters()["transactions-0"] for process in (first, second)]
    assert all(final.get("consumed", 0) > 0 for final in finals), f"one process did no work: {finals}"
    # a record redelivered after a rebalance is consumed twice but paid once (replayed)
    assert sum(f.get("consumed", 0) - f.get("replayed", 0) for f in finals) == len(order_ids)
    assert sum(f.get("confirmed", 0) + f.get("declined", 0) for f in finals) >= len(order_ids)
    assert_each_order_settled_once(proc_settings, order_ids)
    assert group_lag(proc_settings, "transactions") == 0


def test_exactly_once_processes_do_not_fence_each_other(proc_settings: Settings, spawn) -> None:
    """Each process's transactional ids are its own: scaled out, neither kills the other."""
    first = spawn("transactions", "--exactly-once", "--interval", "1").wait_running()
    second = spawn("transactions", "--exactly-once", "--interval", "1").wait_running()
    wait_until(lambda: len(group_members(proc_settings, "transactions")) == 2, 60, "two group members", first, second)

    order_ids = set(place_orders(proc_settings, 200))
    wait_until(lambda: len(paid_order_ids(proc_settings)) == len(order_ids), 90, "every order paid", first, second)
    wait_until(lambda: group_lag(proc_settings, "transactions") == 0, 30, "lag 0", first, second)
    assert first.popen.poll() is None and second.popen.poll() is None, first.log_text() + second.log_text()
    assert first.stop() == 0, first.log_text()
    assert second.stop() == 0, second.log_text()

    finals = [process.final_counters()["transactions-0"] for process in (first, second)]
    assert all(final.get("consumed", 0) > 0 for final in finals), f"one process did no work: {finals}"
    assert_each_order_settled_once(proc_settings.with_(exactly_once=True), order_ids)


def test_sigterm_commits_exactly_the_work_done_and_a_restart_repeats_nothing(proc_settings: Settings, spawn) -> None:
    group = proc_settings.group_id("transactions")
    topic = proc_settings.order_details_topic
    worker = spawn("transactions", "--interval", "1").wait_running()
    orders = spawn("orders", "--rate", "40", "--interval", "1").wait_running()
    wait_until(lambda: len(paid_order_ids(proc_settings)) >= 40, 60, "40 orders paid", worker, orders)

    # SIGTERM while orders keep arriving
    assert worker.stop(signal.SIGTERM, GRACE_S) == 0, worker.log_text()
    paid_before = paid_order_ids(proc_settings)
    committed = committed_offsets(proc_settings, group, topic)
    consumed_before = worker.final_counters()["transactions-0"]["consumed"]
    # orders go on arriving with nobody to pay them
    wait_until(lambda: group_lag(proc_settings, "transactions") >= 20, 30, "20 orders waiting", orders)
    assert orders.stop(signal.SIGTERM, GRACE_S) == 0, orders.log_text()
    placed = orders.final_counters()["orders"]["placed"]

    positions = record_positions(proc_settings, topic)
    assert len(positions) == placed
    # The committed offsets cover exactly the records whose work was done:
    # nothing paid is left uncommitted, nothing committed is left unpaid.
    below_commit = {order_id for order_id, (partition, offset) in positions.items() if offset < committed[partition]}
    assert below_commit == paid_before
    assert consumed_before == len(paid_before)
    assert 0 < len(paid_before) < placed
    assert group_lag(proc_settings, "transactions") == placed - len(paid_before)

    # a new process picks up where the first left off
    restarted = spawn("transactions", "--interval", "1").wait_running()
    wait_until(lambda: len(paid_order_ids(proc_settings)) == placed, 60, "every order paid", restarted)
    wait_until(lambda: group_lag(proc_settings, "transactions") == 0, 30, "lag 0", restarted)
    assert restarted.stop(signal.SIGTERM, GRACE_S) == 0, restarted.log_text()
    final = restarted.final_counters()["transactions-0"]
    assert final.get("replayed", 0) == 0, "the restarted process saw orders the first one had paid"
    assert final["consumed"] == placed - len(paid_before)
    # offsets start at 0 and have no gaps (no transactions), so a partition's end offset is its record count
    records_per_partition = Counter(partition for partition, _offset in positions.values())
    assert committed_offsets(proc_settings, group, topic) == {
        p: records_per_partition[p] for p in range(proc_settings.order_details_partitions)
    }
    assert group_lag(proc_settings, "transactions") == 0
    assert_each_order_settled_once(proc_settings, set(positions))


def test_orders_process_produces_at_its_rate_and_drains_on_sigterm(proc_settings: Settings, spawn) -> None:
    rate = 50.0
    orders: RoleProcess = spawn("orders", "--rate", str(rate), "--interval", "1").wait_running()
    orders.wait_for(lambda p: len(p.counter_lines()) >= 5, 60, "five counter lines")
    assert orders.stop(signal.SIGTERM, GRACE_S) == 0, orders.log_text()

    lines = orders.counter_lines()
    (t0, first), (t1, last) = lines[0], lines[-1]
    produced = last["orders"]["placed"] - first["orders"]["placed"]
    measured = produced / (t1 - t0).total_seconds()
    assert 0.5 * rate <= measured <= 1.5 * rate, f"{measured:.1f} orders/s at --rate {rate}"

    final = orders.final_counters()["orders"]
    assert final["placed"] == final.get("acknowledged", 0) > 0
    assert final.get("send_errors", 0) == 0
    keys = read_topic_keys(proc_settings, proc_settings.order_details_topic)
    assert len(keys) == len(set(keys)) == final["placed"]


def test_bad_orderlab_rate_is_one_line_not_a_traceback(role_env: dict[str, str]) -> None:
    env = {**role_env, "ORDERLAB_RATE": "fast"}
    result = subprocess.run(
        [sys.executable, "-m", "orderlab", "run", "orders"], env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["orderlab: bad setting: ORDERLAB_RATE='fast' is not a number of orders per second"]
    assert "Traceback" not in result.stderr + result.stdout


def test_no_broker_is_one_line_not_a_hang(role_env: dict[str, str]) -> None:
    """A role whose broker never answers gives up after the connect timeout with a one-line error."""
    from orderlab.broker import free_port

    env = {**role_env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "ORDERLAB_CONNECT_TIMEOUT_S": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "orderlab", "run", "transactions"], env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    # the log says where it tried; the error itself is one line, no traceback
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("orderlab: no Kafka broker answers at 127.0.0.1:"), result.stderr


def test_sigterm_while_waiting_for_the_broker_exits_at_once(role_env: dict[str, str], spawn) -> None:
    """A role started before its broker (Compose, Kubernetes) stops at once when told to, not after its timeout."""
    from orderlab.broker import free_port

    env = {**role_env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "ORDERLAB_CONNECT_TIMEOUT_S": "60"}
    waiting = spawn("transactions", env=env)
    waiting.wait_for(lambda p: any("connecting to" in m for _, m in p.messages()), 30, "connecting")
    assert waiting.stop(signal.SIGTERM, GRACE_S) == 0, waiting.log_text()
    assert waiting.exit_seconds is not None and waiting.exit_seconds < GRACE_S / 2
    assert any(m == "transactions: stopped before it started" for _, m in waiting.messages()), waiting.log_text()
