import random

import pytest

from orderlab.events import LineItem, Order
from orderlab.ledger import SCHEMA, Ledger
from orderlab.payments import PaymentRules, decide_payment


def order(order_id: str, price: int = 1000) -> Order:
    return Order.create(order_id, "c", "c@example.com", [LineItem("KB-001", "Keyboard", 1, price)], created_at=1.0)


def test_decline_probability_is_honoured():
    rng = random.Random(1)
    results = [decide_payment(order(str(n)), PaymentRules(0.25), rng) for n in range(4000)]
    declined = sum(not r.approved for r in results)
    assert 800 < declined < 1200


def test_card_limit_declines_big_orders():
    result = decide_payment(order("big", 600_000), PaymentRules(0.0), random.Random(1))
    assert (result.approved, result.reason) == (False, "over_card_limit")


def test_bad_probability_is_refused():
    with pytest.raises(ValueError):
        PaymentRules(1.5)


def test_ledger_charges_each_order_once_even_across_reopen(tmp_path):
    path = str(tmp_path / "ledger.db")
    decide_calls = []

    def decide(o):
        decide_calls.append(o.order_id)
        return decide_payment(o, PaymentRules(0.0), random.Random(2))

    ledger = Ledger(path)
    first = ledger.settle([order("a"), order("b")], decide)
    ledger.close()
    reopened = Ledger(path)  # as after a process restart
    second = reopened.settle([order("a"), order("c")], decide)
    assert [replayed for _, replayed in first] == [False, False]
    assert [replayed for _, replayed in second] == [True, False]
    assert second[0][0] == first[0][0]  # the same payment, not a new one
    assert decide_calls == ["a", "b", "c"]
    assert reopened.charge_count() == 3
    assert reopened.double_charged() == 0


def test_an_order_twice_in_one_batch_is_charged_once(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))
    results = ledger.settle([order("a"), order("b"), order("a")], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    assert [replayed for _, replayed in results] == [False, False, True]
    assert results[2][0] == results[0][0]
    assert ledger.charge_count() == 2 and ledger.double_charged() == 0


def test_an_order_paid_by_another_worker_during_the_decision_is_not_charged_again(tmp_path):
    path = str(tmp_path / "l.db")
    ledger, other_worker = Ledger(path), Ledger(path)
    decided_by_other = []

    def slow_decision(o):
        if not decided_by_other:  # while this worker waits for the card network, the other one pays the order
            decided_by_other.extend(other_worker.settle([o], lambda o2: decide_payment(o2, PaymentRules(0.0), random.Random(3))))
        return decide_payment(o, PaymentRules(0.0), random.Random(4))

    (result, replayed), = ledger.settle([order("a")], slow_decision)
    assert replayed and result == decided_by_other[0][0]
    assert ledger.charge_count() == 1


def test_two_workers_settling_the_same_orders_at_once_charge_each_once_and_one_of_them_reports_it(tmp_path):
    """A rebalance can hand a partition over while its old owner still settles: both write, one payment stands."""
    import threading

    path = str(tmp_path / "l.db")
    ids = [f"o{n}" for n in range(300)]
    start = threading.Barrier(2)
    outcomes: dict[str, list] = {}

    def work(name, seed):
        ledger, rng = Ledger(path), random.Random(seed)
        start.wait()
        outcomes[name] = ledger.settle([order(i) for i in ids], lambda o: decide_payment(o, PaymentRules(0.3), rng))
        ledger.close()

    workers = [threading.Thread(target=work, args=(name, seed)) for name, seed in (("x", 1), ("y", 2))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ledger = Ledger(path)
    for n, order_id in enumerate(ids):
        (x, x_replayed), (y, y_replayed) = outcomes["x"][n], outcomes["y"][n]
        assert x == y == ledger.payment(order_id) and x_replayed != y_replayed
    assert ledger.double_charged() == 0
    assert ledger.charge_count() == sum(result.approved for result, _ in outcomes["x"]) > 0


def test_a_declined_payment_charges_nothing(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))
    (result, _), = ledger.settle([order("big", 600_000)], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    assert not result.approved and ledger.paid_count() == 1 and ledger.charge_count() == 0


def test_a_ledger_written_before_the_charge_trigger_charges_after_reopening(tmp_path):
    import sqlite3

    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.split("-- the card network")[0])  # the tables without the trigger
    old.close()
    ledger = Ledger(path)
    ledger.settle([order("a")], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    assert ledger.charge_count() == 1


def test_a_batch_larger_than_sqlites_parameter_limit_settles(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))
    ids = [f"o{n}" for n in range(1200)]
    ledger.settle([order(i) for i in ids[:700]], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    results = ledger.settle([order(i) for i in ids], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    assert sum(replayed for _, replayed in results) == 700
    assert ledger.charge_count() == 1200 and ledger.double_charged() == 0


def test_double_charged_counts_repeated_gateway_charges(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))
    ledger.settle([order("a")], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
    # a charge made behind the ledger's back, as a broken idempotency check would
    ledger._db.execute("INSERT INTO gateway_charges (order_id, payment_id, amount_cents, charged_at) VALUES ('a', 'p', 1, 1)")
    assert ledger.double_charged() == 1


def test_emails_are_recorded_once(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))
    assert not ledger.emailed("a")
    ledger.record_email("a", "<m1>")
    ledger.record_email("a", "<m2>")
    assert ledger.emailed("a") and ledger.email_count() == 1 and ledger.emailed_ids() == ["a"]


def test_failed_settle_rolls_back(tmp_path):
    ledger = Ledger(str(tmp_path / "l.db"))

    def explode(o):
        if o.order_id == "b":
            raise RuntimeError("gateway down")
        return decide_payment(o, PaymentRules(0.0), random.Random(1))

    with pytest.raises(RuntimeError):
        ledger.settle([order("a"), order("b")], explode)
    assert ledger.charge_count() == 0


def test_memory_ledger_takes_writes_from_several_threads():
    import threading

    ledger = Ledger(":memory:")
    errors = []

    def pay(prefix):
        try:
            for n in range(20):
                ledger.settle([order(f"{prefix}-{n}")], lambda o: decide_payment(o, PaymentRules(0.0), random.Random(1)))
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(p,)) for p in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and ledger.charge_count() == 80
    ledger.close()
