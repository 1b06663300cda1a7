"""Every chaos scenario at small scale against a real broker, with the numbers asserted.

broker_restart runs on the broker that `orderlab chaos` starts for itself
(the session broker may be shared, so it is never restarted here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError

from orderlab.chaos import SCENARIOS, add_parser, run_scenario
from orderlab.chaos.scenarios import CRASH_MIN_RECORDS, SMTP_RETRIES_WHILE_DOWN
from orderlab.clients import make_producer
from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.ledger import Ledger
from orderlab.reconcile import read_topic_keys
from orderlab.seed import SEED
from orderlab.services import PaymentControls, TransactionsBackend
from orderlab.settings import Settings
from orderlab.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ORDERS = 100
RATE = 100.0


def run(name: str, settings: Settings) -> object:
    result = run_scenario(name, orders=ORDERS, rate=RATE, settings=settings)
    print(json.dumps(result.as_dict(), indent=1))
    assert result.passed, result.detail
    assert result.orders == ORDERS and not result.exactly_once
    assert (result.lost, result.double_charged, result.double_emailed) == (0, 0, 0)
    assert result.extra["no_outcome"] == 0 and result.extra["no_email"] == 0
    assert result.extra["unmatched_bad_records"] == [] and result.extra["unexpected_dead_letters"] == 0
    assert result.seconds < 60
    return result


def test_worker_crash_redelivers_its_batch_but_charges_and_emails_once(settings: Settings) -> None:
    result = run("worker_crash", settings)
    crashed = result.extra["crashed_batch_records"]
    assert crashed >= CRASH_MIN_RECORDS and result.extra["replacements"] == 1
    # at-least-once: every record of the crashed batch was processed again and its outcome sent again
    assert result.duplicates_in_output >= crashed
    assert result.dead_lettered == 0 and result.bad_records == 0


def test_rebalance_1_to_4_to_1_loses_nothing(settings: Settings) -> None:
    result = run("rebalance", settings)
    consumed = result.extra["consumed_per_worker_at_4"]
    assert len(consumed) == 4 and all(count > 0 for count in consumed.values()), consumed


def test_poison_records_end_in_the_dlq_with_their_reason(settings: Settings) -> None:
    result = run("poison_records", settings)
    assert result.bad_records == 6
    # transactions and analytics both read order_details, so each poison record is dead-lettered by both
    assert result.dead_lettered == 2 * result.bad_records
    assert result.extra["order_details_records"] == ORDERS + result.bad_records


def test_invalid_orders_through_the_api_and_the_topic_are_dead_lettered(settings: Settings) -> None:
    result = run("invalid_orders", settings)
    assert result.bad_records == 8 and result.extra["rejected_by_api"] == 4
    # 4 refused by the API (one dead letter each), 4 written to the topic (two roles each)
    assert result.dead_lettered == 4 + 2 * 4
    assert result.extra["order_details_records"] == ORDERS + 4


def test_smtp_down_and_back_every_confirmed_order_gets_one_email(settings: Settings) -> None:
    result = run("smtp_down", settings)
    assert result.extra["smtp_retries"] >= SMTP_RETRIES_WHILE_DOWN
    assert result.extra["confirmed_waiting_for_smtp"] > 0


def test_cli_json_on_its_own_broker_with_a_broker_restart(capsys: pytest.CaptureFixture[str]) -> None:
    top = argparse.ArgumentParser(prog="orderlab")
    add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["chaos", "--scenario", "broker_restart", "--scenario", "worker_crash", "--orders", "90",
                           "--rate", "90", "--json"])
    code = args.func(args)
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0, captured.err
    assert report["passed"] is True
    assert [s["name"] for s in report["scenarios"]] == ["broker_restart", "worker_crash"]
    restart = report["scenarios"][0]
    assert restart["lost"] == 0 and restart["double_charged"] == 0 and restart["double_emailed"] == 0
    assert restart["extra"]["placed_while_down"] > 0
    comparison = report["exactly_once_comparison"]
    assert comparison["duplicates_in_output"]["exactly_once"] == 0
    assert comparison["duplicates_in_output"]["at_least_once"] >= CRASH_MIN_RECORDS
    assert comparison["exactly_once"]["passed"] and comparison["at_least_once"]["passed"]
    assert "chaos: [1/2] broker_restart" in captured.err and "starting a private Kafka broker" in captured.err


def test_every_scenario_is_covered_here() -> None:
    tested = {"worker_crash", "rebalance", "poison_records", "invalid_orders", "smtp_down", "broker_restart"}
    hard_kills = {"broker_kill", "email_kill", "transactions_kill", "demo_kill", "leader_kill"}  # test_chaos_kills.py
    assert tested | hard_kills == set(SCENARIOS)


class FlakyAcks(TransactionsBackend):
    """Its first batch's acknowledgements time out, as when the broker goes away mid-batch."""

    failed = False

    def await_acks(self, futures: list) -> None:
        if not self.failed:
            self.failed = True
            super().await_acks(futures)
            raise KafkaTimeoutError("simulated: acknowledgements did not arrive")
        super().await_acks(futures)


def test_a_batch_whose_output_was_not_acknowledged_is_done_again_not_committed(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    producer = make_producer(settings)
    factory = OrderFactory(seed=21, customers=5)
    orders = [factory.make() for _ in range(40)]
    for order in orders:
        producer.send(settings.order_details_topic, key=order.order_id.encode(), value=encode_order(order))
    producer.flush()
    producer.close()
    ledger = Ledger(str(tmp_path / "ledger.db"))
    with FlakyAcks(settings, SEED.role("transactions"), ledger=ledger, controls=PaymentControls(0.0)) as worker:
        deadline = time.monotonic() + 30
        while worker.counters["consumed"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert worker.error is None and worker.counters["consumed"] == 40
    assert worker.counters["retries"] == 1 and worker.counters["rewinds"] == 1
    assert worker.counters["replayed"] >= 1  # the retried batch was charged the first time, not again
    confirmed = read_topic_keys(settings, settings.order_confirmed_topic)
    assert set(confirmed) == {order.order_id for order in orders}
    assert ledger.charge_count() == 40 and ledger.double_charged() == 0
