"""How many records a transactions worker takes a poll: about a second's worth of simulated card network answers."""

from __future__ import annotations

from types import SimpleNamespace

from orderlab.services.transactions import BATCH_BUDGET_S, PaymentControls, TransactionsBackend


def per_poll(latency_ms: float, max_poll_records: int = 500) -> int | None:
    worker = SimpleNamespace(controls=PaymentControls(0.1, latency_ms),
                             consumer=SimpleNamespace(config={"max_poll_records": max_poll_records}))
    return TransactionsBackend.records_per_poll(worker)  # type: ignore[arg-type]


def test_without_latency_a_poll_takes_the_consumers_full_batch():
    assert per_poll(0) is None


def test_with_latency_a_batch_takes_about_the_budget_and_never_more_than_the_consumer_allows():
    assert BATCH_BUDGET_S == 1.0
    assert per_poll(20) == 50 and per_poll(20) * 20 / 1000 == BATCH_BUDGET_S
    assert per_poll(1000) == 1 and per_poll(5000) == 1  # slower than the budget: one record at a time
    assert per_poll(1) == 500 and per_poll(1, max_poll_records=100) == 100
