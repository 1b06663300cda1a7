"""The hard kills of `orderlab chaos` at small scale: real brokers, real processes, SIGKILL.

transactions_kill and email_kill run on the session broker (the processes
they kill are their own); broker_kill and demo_kill through the command, on
the private broker it starts; leader_kill on the session's private
three-node cluster.
"""

from __future__ import annotations

import argparse
import json

import pytest

from orderlab.broker import LocalCluster
from orderlab.chaos import add_parser, run_scenario
from orderlab.chaos.scenarios import CRASH_MIN_RECORDS
from orderlab.services.email import RESEND_WINDOW
from orderlab.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ORDERS = 60
RATE = 60.0


def reconciled(result: object) -> None:
    print(json.dumps(result.as_dict(), indent=1))
    assert result.passed, result.detail
    assert result.orders >= ORDERS
    assert (result.lost, result.double_charged) == (0, 0)
    assert result.extra["no_outcome"] == 0 and result.extra["no_email"] == 0


def test_transactions_kill_between_charging_and_committing_charges_nothing_twice(settings: Settings) -> None:
    result = run_scenario("transactions_kill", orders=ORDERS, rate=RATE, settings=settings)
    reconciled(result)
    assert result.double_emailed == 0
    assert result.extra["exit_signal"] == 9  # SIGKILL, not a drain
    # the held batch was charged before the kill, redelivered after it, and not charged again
    assert result.extra["charged_before_kill"] >= CRASH_MIN_RECORDS
    assert result.duplicates_in_output >= result.extra["charged_before_kill"]


def test_email_kill_mid_batch_resends_within_the_window_and_misses_none(settings: Settings) -> None:
    result = run_scenario("email_kill", orders=ORDERS, rate=RATE, settings=settings)
    reconciled(result)
    assert result.extra["resend_window"] == RESEND_WINDOW
    assert result.double_emailed <= RESEND_WINDOW
    assert result.extra["confirmed_waiting_at_kill"] > 0


def test_cli_json_broker_kill_and_demo_kill_on_its_own_broker(capsys: pytest.CaptureFixture[str]) -> None:
    top = argparse.ArgumentParser(prog="orderlab")
    add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["chaos", "--scenario", "broker_kill", "--scenario", "demo_kill", "--orders", str(ORDERS),
                           "--rate", f"{RATE:g}", "--json"])
    code = args.func(args)
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0, captured.err
    assert report["passed"] is True and report["brokers"] == 1
    kill, demo = report["scenarios"]
    assert (kill["name"], demo["name"]) == ("broker_kill", "demo_kill")
    assert (kill["lost"], kill["double_charged"], kill["double_emailed"]) == (0, 0, 0)
    assert kill["extra"]["placed_while_down"] > 0
    assert demo["lost"] == 0 and demo["double_charged"] == 0 and demo["double_emailed"] <= RESEND_WINDOW
    # the first demo was killed after charging some orders; the second placed its own on the same topics
    assert demo["extra"]["charged_before_kill"] > 0 and demo["extra"]["second_demo_orders"] == ORDERS
    # the outcome records the kill left to be sent again do not fail the second demo; an e-mail twice would
    assert demo["extra"]["second_demo_exit"] == (1 if demo["extra"]["second_demo_emailed_twice"] else 0)
    assert demo["orders"] > ORDERS


@pytest.mark.cluster
def test_leader_kill_on_three_nodes_with_acks_all_loses_nothing(cluster: LocalCluster) -> None:
    result = run_scenario("leader_kill", orders=ORDERS, rate=RATE, settings=Settings.from_env(), cluster=cluster)
    reconciled(result)
    assert result.double_emailed == 0 and result.extra["acks"] == "all"
    assert result.extra["new_leader"] != result.extra["killed_node"]
    assert cluster.running_nodes() and len(cluster.running_nodes()) == 3  # the killed node was started again

