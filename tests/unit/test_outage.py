"""Outages made visible, without a broker: the outage state machine (lost, then back: one warning,
one line with the time away), what feeds it, and where it shows (snapshot, control room, counter line).
Stopping a real broker under running roles is ``tests/integration/test_broker_outage.py``."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from orderlab.process import counter_line
from orderlab.seed import SEED
from orderlab.services import OrdersBackend
from orderlab.services.backoff import BackOff
from orderlab.services.base import Counters
from orderlab.services.outage import GRACE_S, Outage, broker_connections, report_connections
from orderlab.settings import Settings
from orderlab.snapshot import take_snapshot
from orderlab.ui.tables import outage_line

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_suffix="-unit", connect_timeout_s=2)
LOGGER = "orderlab.test.outage"


class Clock:
    """A clock the test moves: ``now`` seconds on the monotonic clock, 1_800_000_000 + now on the wall."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now


def outage(clock: Clock, **options) -> Outage:  # noqa: ANN003
    return Outage("transactions-0", clock=clock.monotonic, wall_clock=clock.wall, logger=logging.getLogger(LOGGER), **options)


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(record.levelname, record.getMessage()) for record in caplog.records if record.name == LOGGER]


def test_lost_then_back_is_one_warning_and_one_line_with_the_time_away(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    clock = Clock()
    state = outage(clock)
    for now in (0.0, 0.5, 1.0, GRACE_S - 0.1):  # a blip shorter than the grace is not an outage
        clock.now = now
        state.failing("connection", "no connection to any broker")
    assert not state.lost and state.since is None and lines(caplog) == []
    for now in (GRACE_S, 3.0, 5.0, 9.5):
        clock.now = now
        state.failing("connection", "no connection to any broker")
    assert state.lost and state.since == clock.wall() - 9.5  # since the broker was first missed
    clock.now = 10.0
    state.fine("connection")
    state.fine("connection")
    assert not state.lost and state.since is None and state.outages == 1
    assert lines(caplog) == [
        ("WARNING", "transactions-0: lost the broker (no connection to any broker)"),
        ("INFO", "transactions-0: broker back after 10.0 s"),
    ]


def test_a_blip_that_ends_within_the_grace_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    clock = Clock()
    state = outage(clock)
    state.failing("connection", "no connection to any broker")
    clock.now = 1.0
    state.fine("connection")
    clock.now = 5.0
    state.failing("connection", "no connection to any broker")  # a new symptom: its grace starts again
    assert not state.lost and lines(caplog) == []


def test_the_broker_is_back_only_when_every_symptom_is_over(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    clock = Clock()
    state = outage(clock, detail=lambda: "1,234 orders wait unacknowledged")
    state.failing("batch", "batch failed: KafkaTimeoutError: acks", at_once=True)  # already waited its own timeout
    clock.now = 1.0
    state.failing("connection", "no connection to any broker")
    clock.now = 4.0
    state.fine("batch")
    assert state.lost
    clock.now = 7.0
    state.fine("connection")
    assert lines(caplog) == [
        ("WARNING", "transactions-0: lost the broker (batch failed: KafkaTimeoutError: acks); 1,234 orders wait unacknowledged"),
        ("INFO", "transactions-0: broker back after 7.0 s; 1,234 orders wait unacknowledged"),
    ]


def test_backoff_reports_a_broker_failure_to_the_outage_and_warns_of_any_other(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="orderlab.services")  # whatever an earlier test left it at
    state = Outage("analytics")
    backoff = BackOff("analytics", Counters("retries"), state)
    assert backoff.failed("batch", KafkaTimeoutError("no acks")) == pytest.approx(0.2)
    assert backoff.failed("batch", KafkaTimeoutError("no acks")) == pytest.approx(0.4)
    assert state.lost
    backoff.succeeded()
    assert not state.lost and backoff.failures_in_a_row == 0
    backoff.failed("batch", MessageSizeTooLargeError("too big"))
    assert not state.lost
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["analytics: lost the broker (batch failed: KafkaTimeoutError: KafkaTimeoutError: no acks)",
                        "analytics: batch failed (MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError: too big); "
                        "retrying in 0.2 s"]
    assert any(r.getMessage().startswith("analytics: broker back after") for r in caplog.records)


def test_an_empty_poll_without_a_connection_does_not_end_the_outage_a_failed_poll_began(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="orderlab.services")  # whatever an earlier test left it at
    clock = Clock()
    state = outage(clock)
    backoff = BackOff("analytics", Counters("retries"), state)
    backoff.failed("poll", KafkaTimeoutError("connection refused"))  # the broker is stopping
    assert state.lost
    clock.now = 0.3
    backoff.polled(connected=False)  # kafka-python returns nothing, no error, while no broker answers
    assert state.lost
    clock.now = 20.0
    backoff.polled(connected=True)
    assert not state.lost and state.outages == 1
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert [line.split(": ", 1)[1].split(" (")[0] for line in said] == ["lost the broker", "broker back after 20.0 s"]


def connections(*states: bool) -> SimpleNamespace:
    """A stand-in for a kafka-python 3.0 client with connections in these states."""
    return SimpleNamespace(_manager=SimpleNamespace(_conns={n: SimpleNamespace(connected=c) for n, c in enumerate(states)}))


def test_the_connections_a_client_holds_are_read_where_kafka_python_keeps_them() -> None:
    assert broker_connections(connections(True, False, True)) == 2
    assert broker_connections(connections()) == 0
    producer = SimpleNamespace(_sender=SimpleNamespace(_client=connections(True)))
    assert broker_connections(producer) == 1
    assert broker_connections(object()) is None and broker_connections(None) is None


def test_no_connection_is_a_symptom_only_where_it_matters() -> None:
    clock = Clock()
    state = outage(clock, grace_s=0.0)
    report_connections(state, connections(False), matters=False)  # an idle producer may close its connections
    assert not state.lost
    report_connections(state, object())  # cannot tell: no symptom
    assert not state.lost
    report_connections(state, connections(False))
    assert state.lost
    report_connections(state, connections(True))
    assert not state.lost


def test_the_order_source_says_how_many_orders_wait_when_acknowledgements_stall(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="orderlab.services")  # whatever an earlier test left it at
    clock = Clock()
    monkeypatch.setattr("orderlab.services.orders.time.monotonic", clock.monotonic)
    orders = OrdersBackend(SETTINGS, SEED.role("orders"))  # not started: no producer, so no connection state
    orders.outage = Outage("orders", detail=orders.outage.detail, clock=clock.monotonic, wall_clock=clock.wall)
    orders.counters.add("placed", 40)
    orders.counters.add("acknowledged", 40)
    orders.check_broker()
    orders.counters.add("placed", 25)  # sent while the broker stopped answering
    for now in (1.0, 3.0, 5.0, 8.0):
        clock.now = now
        orders.check_broker()
    assert orders.outage.lost and orders.gauges() == {"unacknowledged": 25}
    assert orders.outage.since == clock.wall() - 8.0  # since the acknowledgements stopped
    assert "orders: placed=65, acknowledged=40, unacknowledged=25" == counter_line([orders])
    orders.counters.add("acknowledged", 25)
    clock.now = 9.0
    orders.check_broker()
    assert not orders.outage.lost
    said = [r.getMessage() for r in caplog.records if r.name == "orderlab.services.outage"]
    assert said == ["orders: lost the broker (no acknowledgement for 5 s); 25 orders wait unacknowledged",
                    "orders: broker back after 9.0 s; 0 orders wait unacknowledged"]


def test_the_snapshot_and_the_control_room_show_since_when_the_broker_is_unreachable() -> None:
    reaching = SimpleNamespace(name="email", outage=Outage("email"), counters=Counters(), status=lambda: {})
    lost = Outage("transactions-0", grace_s=0.0, wall_clock=lambda: time.mktime((2026, 12, 1, 14, 3, 7, 0, 0, -1)))
    lost.failing("connection", "no connection to any broker")
    losing = SimpleNamespace(name="transactions-0", outage=lost, counters=Counters(), status=lambda: {})
    snapshot = take_snapshot(rate=0, workers=1, running=[reaching, losing], every_worker={}, lag={})
    assert snapshot.broker_lost == {"transactions-0": lost.since}
    assert snapshot.broker_unreachable_since == lost.since
    assert outage_line(snapshot) == "broker unreachable since 14:03:07 (transactions-0)"
    lost.fine("connection")
    snapshot = take_snapshot(rate=0, workers=1, running=[reaching, losing], every_worker={}, lag={})
    assert snapshot.broker_unreachable_since is None and outage_line(snapshot) == ""
