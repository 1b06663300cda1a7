"""Each role against a real broker."""

from __future__ import annotations

import json
import time

import pytest

from orderlab.clients import make_producer
from orderlab import aggregates
from orderlab.events import (
    ConfirmedOrder, DeclinedOrder, decode_confirmed, decode_declined, encode_confirmed, encode_declined, encode_order,
)
from orderlab.generator import OrderFactory
from orderlab.ledger import Ledger
from orderlab.mail import MailCatcher
from orderlab.reconcile import read_topic_keys, read_topic_records
from orderlab.seed import SEED
from orderlab.services import (
    AnalyticsBackend, EmailNotifier, OrdersBackend, PaymentControls, ServiceError, SmtpEndpoint, TransactionsBackend,
)
from orderlab.topics import ensure_topics
from waiting import wait_for

pytestmark = pytest.mark.integration



def write_orders(settings, count, seed, extra=()):
    """Put ``count`` generated orders (then ``extra`` raw (key, value) records) on order_details."""
    ensure_topics(settings)
    producer = make_producer(settings)
    factory = OrderFactory(seed=seed, customers=10)
    orders = [factory.make() for _ in range(count)]
    for order in orders:
        producer.send(settings.order_details_topic, key=order.order_id.encode(), value=encode_order(order))
    for key, value in extra:
        producer.send(settings.order_details_topic, key=key, value=value)
    producer.flush()
    producer.close()
    return orders


def test_orders_backend_keys_orders_by_id_and_paces_the_generator(settings):
    ensure_topics(settings)
    with OrdersBackend(settings, SEED.role("orders"), rate=200, limit=100, keep_ids=True) as orders:
        assert wait_for(lambda: orders.counters["acknowledged"] == 100)
        assert not wait_for(lambda: orders.counters["placed"] > 100, timeout=0.3)
    records = read_topic_records(settings, settings.order_details_topic)
    assert len(records) == 100
    assert all(json.loads(value)["order_id"] == key.decode() for key, value, _ in records)
    assert sorted(read_topic_keys(settings, settings.order_details_topic)) == sorted(orders.placed_ids)


def test_invalid_submitted_order_goes_to_the_dlq_with_its_reason(settings):
    ensure_topics(settings)
    with OrdersBackend(settings, SEED.role("orders"), keep_ids=True) as orders:
        placed = orders.submit({"order_id": "bad-1", "customer_id": "c", "customer_email": "x@example.com",
                                "items": [{"sku": "KB-001", "name": "K", "quantity": -2, "unit_price_cents": 100}],
                                "total_cents": -200, "currency": "EUR", "created_at": time.time()})
    assert not placed.accepted and "quantity of KB-001" in placed.reason
    (record,) = read_topic_records(settings, settings.dlq_topic(settings.order_details_topic))
    assert b"quantity of KB-001" in dict(record[2])["orderlab.reason"]


def test_transactions_settles_each_order_and_survives_poison(settings, tmp_path):
    orders = write_orders(settings, 50, seed=3, extra=[(b"poison", b"{not json")])
    ledger = Ledger(str(tmp_path / "l.db"))
    with TransactionsBackend(settings, SEED.role("transactions"), ledger=ledger, controls=PaymentControls(0.3)) as worker:
        assert wait_for(lambda: worker.counters["confirmed"] + worker.counters["declined"] == 50)
        assert wait_for(lambda: worker.counters["dead_lettered"] == 1)
    confirmed = [decode_confirmed(v).order.order_id for _, v, _ in read_topic_records(settings, settings.order_confirmed_topic)]
    declined = [decode_declined(v).order.order_id for _, v, _ in read_topic_records(settings, settings.order_declined_topic)]
    assert sorted(confirmed + declined) == sorted(o.order_id for o in orders)
    assert 0 < len(declined) < 50
    (dead,) = read_topic_records(settings, settings.dlq_topic(settings.order_details_topic))
    assert dead[1] == b"{not json" and dict(dead[2])["orderlab.reason"].startswith(b"not JSON")
    assert ledger.charge_count() == len(confirmed) and ledger.double_charged() == 0

    # a second worker in the same group sees nothing new: offsets were committed after the work
    with TransactionsBackend(settings, SEED.role("transactions"), ledger=ledger) as again:
        assert not wait_for(lambda: again.counters["consumed"] > 0, timeout=3)


def test_redelivered_orders_are_not_charged_twice(settings, tmp_path):
    ensure_topics(settings)
    producer = make_producer(settings)
    order = OrderFactory(seed=5, customers=3).make()
    for _ in range(3):  # the same order three times, as a redelivery would
        producer.send(settings.order_details_topic, key=order.order_id.encode(), value=encode_order(order))
    producer.flush()
    ledger = Ledger(str(tmp_path / "l.db"))
    with TransactionsBackend(settings, SEED.role("transactions"), ledger=ledger, controls=PaymentControls(0.0)) as worker:
        assert wait_for(lambda: worker.counters["consumed"] == 3)
    assert worker.counters["replayed"] == 2
    assert ledger.charge_count() == 1


def test_email_notifier_sends_over_smtp_once_per_order(settings, tmp_path):
    ensure_topics(settings)
    from orderlab.events import ConfirmedOrder, encode_confirmed

    producer = make_producer(settings)
    factory = OrderFactory(seed=9, customers=5)
    confirmed = [ConfirmedOrder(factory.make(), f"pay_{n}", time.time()) for n in range(20)]
    for record in confirmed + confirmed[:5]:  # five redelivered
        producer.send(settings.order_confirmed_topic, key=record.order.order_id.encode(), value=encode_confirmed(record))
    producer.flush()
    ledger = Ledger(str(tmp_path / "l.db"))
    with MailCatcher() as catcher:
        with EmailNotifier(settings, SEED.role("email"), ledger=ledger, smtp=SmtpEndpoint(catcher.host, catcher.port)) as notifier:
            assert wait_for(lambda: notifier.counters["consumed"] == 25)
        assert catcher.count() == 20
        assert sorted(m.order_id for m in catcher.messages) == sorted(r.order.order_id for r in confirmed)
    assert notifier.counters["skipped_already_sent"] == 5


def test_email_notifier_commits_the_batch_it_still_had_in_flight_when_stopped(settings, tmp_path):
    """The role hands a batch to the SMTP relay and reads the next while it is sent; a clean stop
    settles and commits that last batch, so the next run of the group reads nothing again."""
    ensure_topics(settings)
    producer = make_producer(settings)
    factory = OrderFactory(seed=12, customers=5)
    confirmed = [ConfirmedOrder(factory.make(), f"pay_{n}", time.time()) for n in range(60)]
    for record in confirmed:
        producer.send(settings.order_confirmed_topic, key=record.order.order_id.encode(), value=encode_confirmed(record))
    producer.flush()
    ledger = Ledger(str(tmp_path / "l.db"))
    with MailCatcher() as catcher:
        smtp = SmtpEndpoint(catcher.host, catcher.port)
        with EmailNotifier(settings, SEED.role("email"), ledger=ledger, smtp=smtp) as notifier:
            assert wait_for(lambda: notifier.counters["sent"] == 60)
        assert catcher.count() == 60
        with EmailNotifier(settings, SEED.role("email"), ledger=ledger, smtp=smtp) as again:
            assert wait_for(lambda: again.partitions > 0)
            assert not wait_for(lambda: again.counters["consumed"] + again.counters["skipped_already_sent"] > 0, timeout=2)
        assert catcher.count() == 60
    assert notifier.counters["consumed"] == 60


def test_email_waits_for_smtp_to_come_back(settings, tmp_path):
    ensure_topics(settings)
    from orderlab.events import ConfirmedOrder, encode_confirmed

    record = ConfirmedOrder(OrderFactory(seed=1, customers=2).make(), "pay", time.time())
    producer = make_producer(settings)
    producer.send(settings.order_confirmed_topic, key=b"k", value=encode_confirmed(record))
    producer.flush()
    catcher = MailCatcher()  # port chosen, server not yet up
    with EmailNotifier(settings, SEED.role("email"), ledger=Ledger(str(tmp_path / "l.db")), smtp=SmtpEndpoint(catcher.host, catcher.port)) as notifier:
        assert wait_for(lambda: notifier.counters["smtp_retries"] >= 2)
        assert notifier.counters["sent"] == 0
        with catcher:
            assert catcher.wait_for(1, timeout=15)
    assert notifier.counters["sent"] == 1


def test_analytics_counts_orders_and_outcomes(settings):
    orders = write_orders(settings, 30, seed=11)
    write_orders(settings, 0, seed=0, extra=[(orders[0].order_id.encode(), encode_order(orders[0]))])
    with AnalyticsBackend(settings, SEED.role("analytics")) as analytics:
        assert wait_for(lambda: analytics.orders_seen == 30 and analytics.counters["duplicates_seen"] == 1)
        frame, items, _ = analytics.frames()
    assert frame["total_cents"].sum() == sum(o.total_cents for o in orders)
    assert items["quantity"].sum() == sum(o.item_count for o in orders)


def test_analytics_revenue_counts_each_confirmed_order_once_and_no_declined_one(settings):
    confirmed, declined = write_orders(settings, 3, seed=17), write_orders(settings, 2, seed=18)
    producer = make_producer(settings)
    for order in [*confirmed, confirmed[0]]:  # the first confirmation is redelivered
        value = encode_confirmed(ConfirmedOrder(order, "pay_1", time.time()))
        producer.send(settings.order_confirmed_topic, key=order.order_id.encode(), value=value)
    for order in declined:
        value = encode_declined(DeclinedOrder(order, "card_expired", time.time()))
        producer.send(settings.order_declined_topic, key=order.order_id.encode(), value=value)
    producer.flush()
    producer.close()
    with AnalyticsBackend(settings, SEED.role("analytics")) as analytics:
        assert wait_for(lambda: analytics.counters["outcomes_seen"] == 6 and analytics.orders_seen == 5)
        orders, _, outcomes = analytics.frames()
    assert analytics.revenue_cents == sum(order.total_cents for order in confirmed)
    assert aggregates.summary(orders, orders.iloc[0:0], outcomes, time.time())["revenue"] * 100 == pytest.approx(
        analytics.revenue_cents)


def test_a_stopped_service_cannot_be_restarted(settings):
    ensure_topics(settings)
    service = AnalyticsBackend(settings, SEED.role("analytics"))
    service.start()
    service.start()  # idempotent
    assert service.stop() and service.stop()
    with pytest.raises(ServiceError, match="make a new AnalyticsBackend"):
        service.start()


def test_analytics_forgets_old_ids_beyond_its_window(settings):
    write_orders(settings, 12, seed=13)
    with AnalyticsBackend(settings, SEED.role("analytics"), keep=5) as analytics:
        assert wait_for(lambda: analytics.orders_seen == 12)
        assert len(analytics._seen_ids) == 5
        frame, _, _ = analytics.frames()
    assert len(frame) == 5 and analytics.orders_seen == 12
    assert analytics.revenue_cents == 0  # revenue counts confirmed orders, and none was confirmed here
