"""Exactly-once mode against a real broker: transactional output with the offsets
in the transaction, read_committed readers, aborts that hide their records,
and a fenced zombie worker that stops instead of writing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaError

from orderlab.chaos import compare_delivery_modes, run_scenario
from orderlab.chaos.scenarios import CRASH_MIN_RECORDS
from orderlab.clients import make_producer
from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.lab import Lab
from orderlab.ledger import Ledger
from orderlab.reconcile import read_topic_keys
from orderlab.seed import SEED
from orderlab.services import PaymentControls, TransactionsBackend
from orderlab.services.transactions import WorkerFenced
from orderlab.settings import Settings
from orderlab.topics import ensure_topics
from waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]



def place(settings: Settings, count: int, seed: int) -> list[str]:
    ensure_topics(settings)
    producer = make_producer(settings.with_(exactly_once=False))
    factory = OrderFactory(seed=seed, customers=5)
    ids = []
    for _ in range(count):
        order = factory.make()
        producer.send(settings.order_details_topic, key=order.order_id.encode(), value=encode_order(order))
        ids.append(order.order_id)
    producer.flush()
    producer.close()
    return ids


def outcomes(settings: Settings) -> Counter[str]:
    keys = Counter(read_topic_keys(settings, settings.order_confirmed_topic))
    keys.update(read_topic_keys(settings, settings.order_declined_topic))
    return keys


def test_worker_crash_duplicates_at_least_once_but_not_exactly_once(settings: Settings) -> None:
    modes = compare_delivery_modes(orders=100, rate=100, settings=settings)
    for result in modes.values():
        print(json.dumps(result.as_dict(), indent=1))
        assert result.passed, result.detail
        assert (result.lost, result.double_charged, result.double_emailed) == (0, 0, 0)
    alo, eos = modes["at_least_once"], modes["exactly_once"]
    assert not alo.exactly_once and eos.exactly_once
    assert alo.duplicates_in_output >= alo.extra["crashed_batch_records"] >= CRASH_MIN_RECORDS
    assert eos.duplicates_in_output == 0
    # the crashed batch really was written, in a transaction that was then aborted
    assert eos.extra["aborted_outcome_records_in_log"] >= eos.extra["crashed_batch_records"] >= CRASH_MIN_RECORDS


def test_broker_restart_exactly_once_on_a_private_broker(settings: Settings) -> None:
    result = run_scenario("broker_restart", orders=60, rate=60, exactly_once=True, settings=settings)
    print(json.dumps(result.as_dict(), indent=1))
    assert result.passed, result.detail
    assert result.exactly_once and result.duplicates_in_output == 0 and result.lost == 0
    assert result.extra["placed_while_down"] > 0


def test_every_consumer_of_an_exactly_once_lab_reads_committed(settings: Settings) -> None:
    eos = settings.with_(exactly_once=True)
    with Lab(eos, rate=0, workers=2) as lab:
        consumers = [lab.email, lab.analytics, *lab.workers]
        assert all(s is not None and s.consumer is not None for s in consumers)
        assert {s.consumer.config["isolation_level"] for s in consumers} == {"read_committed"}
        assert {w.producer.config["transactional_id"] for w in lab.workers} == {
            f"{eos.group_id('transactions')}-0", f"{eos.group_id('transactions')}-1"
        }
    with Lab(settings, rate=0, workers=1) as lab:
        assert lab.email.consumer.config["isolation_level"] == "read_uncommitted"


def test_a_caught_up_exactly_once_lab_shows_no_lag(settings: Settings) -> None:
    """Readers of transactional topics commit past the last transaction marker, not just their last record."""
    eos = settings.with_(exactly_once=True)
    with Lab(eos, rate=0, workers=2) as lab:
        lab.generate(60, rate=200, timeout=30)
        assert lab.wait_for_orders(60, 30).analytics_orders_seen >= 60
        caught_up = wait_for(lambda: not any(lab.snapshot().lag.values()), timeout=15)
        assert caught_up, lab.snapshot().lag


class FailsOnce(TransactionsBackend):
    """Sends a batch's outcomes, then fails before committing: the transaction must be aborted."""

    failed = False

    def process(self, batch: list[Any]) -> list[Any]:
        futures = super().process(batch)
        if not self.failed:
            self.failed = True
            self.producer.flush()  # the outcomes are in the log, inside the open transaction
            raise KafkaError("simulated: the card network connection dropped mid-batch")
        return futures


def test_an_aborted_transaction_is_invisible_and_its_batch_is_done_again(settings: Settings, tmp_path: Path) -> None:
    eos = settings.with_(exactly_once=True)
    ids = place(eos, 40, seed=31)
    ledger = Ledger(str(tmp_path / "ledger.db"))
    with FailsOnce(eos, SEED.role("transactions"), ledger=ledger, controls=PaymentControls(0.2)) as worker:
        assert wait_for(lambda: worker.counters["consumed"] == 40)
    assert worker.error is None
    assert worker.counters["aborted"] == 1 and worker.counters["rewinds"] == 1
    assert worker.counters["replayed"] >= 1  # the retried batch found its payments in the ledger
    committed = outcomes(eos)
    assert set(committed) == set(ids) and max(committed.values()) == 1  # read_committed: once each
    in_log = outcomes(settings)  # read_uncommitted: the aborted records are there too
    assert sum(in_log.values()) > len(ids)
    assert ledger.charge_count() == sum(1 for _ in read_topic_keys(eos, eos.order_confirmed_topic))
    assert ledger.double_charged() == 0


def test_two_workers_with_one_transactional_id_never_commit_an_order_twice(settings: Settings, tmp_path: Path) -> None:
    """A zombie and its successor share a slot (transactional id) and fence each other.

    Which of them keeps running depends on how the group spreads the
    partitions (a worker with no partitions never opens a transaction, so it
    is never fenced again, and two that keep fencing each other may both
    stop); what must hold either way is that read_committed readers never see
    an order twice and nothing is charged twice.
    """
    eos = settings.with_(exactly_once=True)
    first_ids = place(eos, 20, seed=41)
    ledger = Ledger(str(tmp_path / "ledger.db"))
    zombie = TransactionsBackend(eos, SEED.role("transactions"), ledger=ledger, worker=0, controls=PaymentControls(0.0))
    zombie.start()
    try:
        assert wait_for(lambda: zombie.counters["consumed"] == 20)
        with TransactionsBackend(eos, SEED.role("transactions"), ledger=ledger, worker=0, controls=PaymentControls(0.0)) as successor:
            more_ids: list[str] = []
            for seed in range(42, 52):
                more_ids += place(eos, 10, seed=seed)
            # Liveness is not promised here: the two may fence each other until
            # both stop. Wait (bounded) for what progress there is, then check safety.
            wait_for(lambda: set(outcomes(eos)) >= set(first_ids + more_ids), 30)
        committed = outcomes(eos)
        assert set(committed) >= set(first_ids)  # the zombie's own batches, committed before the takeover
        assert set(committed) <= set(first_ids + more_ids) and max(committed.values()) == 1
        assert ledger.double_charged() == 0
        assert successor.error is None or isinstance(successor.error, WorkerFenced)
        assert zombie.error is None or isinstance(zombie.error, WorkerFenced)
    finally:
        zombie.stop()


class SlowFirstBatch(TransactionsBackend):
    """Its first transaction stays open past the transaction timeout, as when the broker is away for long."""

    transaction_timeout_ms = 1000
    slowed = False

    def process(self, batch: list[Any]) -> list[Any]:
        futures = super().process(batch)
        if not self.slowed:
            self.slowed = True
            self.producer.flush()
            # the broker checks for timed-out transactions every 10 s
            # (transaction.abort.timed.out.transaction.cleanup.interval.ms)
            self.wait(12)
        return futures


def test_a_transaction_the_broker_timed_out_is_redone_with_a_new_producer(settings: Settings, tmp_path: Path) -> None:
    eos = settings.with_(exactly_once=True)
    ids = place(eos, 30, seed=51)
    ledger = Ledger(str(tmp_path / "ledger.db"))
    with SlowFirstBatch(eos, SEED.role("transactions"), ledger=ledger, controls=PaymentControls(0.0)) as worker:
        assert wait_for(lambda: worker.counters["consumed"] == 30, 60)
    assert worker.error is None, worker.error
    assert worker.counters["producer_renewals"] == 1 and worker.counters["aborted"] == 1
    committed = outcomes(eos)
    assert set(committed) == set(ids) and max(committed.values()) == 1
    assert ledger.double_charged() == 0 and ledger.charge_count() == 30


def test_kafka_python_returns_from_a_commit_the_broker_aborted(settings: Settings) -> None:
    """What the worker guards against (issue 14), shown on the real broker: a send refused with
    OUT_OF_ORDER_SEQUENCE_NUMBER while commit_transaction() waits for it. kafka-python bumps the
    epoch (the broker aborts the transaction), skips the EndTxn and returns as if it committed.
    Should a kafka-python release fix this, this test fails and the guard in
    TransactionsBackend.handle may be dropped."""
    from kafka import TopicPartition

    from orderlab.kafka_compat import transaction_epoch
    from orderlab.reconcile import read_keys_by_position

    ensure_topics(settings)
    topic = settings.order_confirmed_topic
    producer = make_producer(settings, transactional_id=f"issue-14{settings.topic_suffix}", linger_ms=0)
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, key=b"written", value=b"{}", partition=0).get(timeout=30)
        manager = producer._transaction_manager  # noqa: SLF001
        tp = TopicPartition(topic, 0)
        manager.set_sequence_number(tp, manager.sequence_number(tp) + 3)  # as a retried batch that overtook another
        refused = producer.send(topic, key=b"refused", value=b"{}", partition=0)
        epoch = transaction_epoch(producer)
        producer.commit_transaction()  # returns, no error
        with pytest.raises(KafkaError):
            refused.get(timeout=30)
        assert transaction_epoch(producer) != epoch
    finally:
        producer.close(timeout=5)
    assert read_keys_by_position(settings.with_(exactly_once=True), topic) == {}  # nothing committed
    assert list(read_keys_by_position(settings, topic).values()) == ["written"]  # in the log, aborted
