"""What only a broker of the test's own allows: stopping it under running roles (issue 14, item 5),
and a record corrupted on its disk (item 2). The shared test broker is never stopped."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from typing import Iterator

import pytest
from rawrecords import corrupt_record
from waiting import wait_for

from orderlab.clients import make_producer
from orderlab.events import encode_order
from orderlab.generator import OrderFactory
from orderlab.lab import Lab
from orderlab.reconcile import read_dead_letters
from orderlab.seed import SEED
from orderlab.settings import Settings
from orderlab.topics import ensure_topics
from orderlab.wiring import Wiring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


class Lines(logging.Handler):
    """The messages logged to one logger (whatever the root logger and propagation do)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture()
def outage_lines() -> Iterator[Lines]:
    logger = logging.getLogger("orderlab.services.outage")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture()
def private_settings(settings: Settings, private_broker) -> Settings:  # noqa: ANN001
    return replace(settings, bootstrap_servers=private_broker.bootstrap_servers)


def test_a_record_that_fails_its_crc_is_dead_lettered_and_the_role_goes_on(private_settings: Settings, private_broker) -> None:  # noqa: ANN001
    settings = private_settings
    ensure_topics(settings)
    topic, partition = settings.order_details_topic, 1
    factory = OrderFactory(seed=5)
    producer = make_producer(settings)
    offsets = []
    for n in range(4):
        order = factory.make()
        value = encode_order(order).replace(b'"currency":"EUR"', b'"currency":"EUR","note":"CORRUPT-ME"') if n == 2 else encode_order(order)
        offsets.append(producer.send(topic, key=order.order_id.encode(), value=value, partition=partition).get(timeout=30).offset)
    producer.close(timeout=5)
    corrupt_record(private_broker.data_dir, topic, partition, b"CORRUPT-ME")

    wiring = Wiring(settings, SEED)
    try:
        wiring.prepare("transactions")
        with wiring.service("transactions") as service:
            assert wait_for(lambda: service.counters["consumed"] >= 4, timeout=60), service.counters.snapshot()
            assert service.counters["unreadable"] == 1 and service.counters["retries"] == 0
            assert service.counters["confirmed"] + service.counters["declined"] == 3
    finally:
        wiring.close()
    (letter,) = read_dead_letters(settings, [settings.dlq_topic(topic)])
    assert (letter.source_partition, letter.source_offset) == (partition, offsets[2])
    assert "failed crc check" in letter.reason and letter.role == "transactions"


def test_each_role_says_once_that_it_lost_the_broker_and_once_that_it_is_back(
    private_settings: Settings, private_broker, outage_lines: Lines  # noqa: ANN001
) -> None:
    with Lab(private_settings, rate=20, workers=1) as lab:
        workers = sorted(lab.snapshot(with_lag=False).roles)  # orders, transactions-0, email, analytics
        assert lab.wait_until(lambda s: s.settled > 0 and s.emails_sent > 0 and s.analytics_orders_seen > 0, 90).settled
        assert lab.snapshot(with_lag=False).broker_unreachable_since is None

        stopping = time.time()
        private_broker.stop()
        stopped = time.time()
        lost = lab.wait_until(lambda s: sorted(s.broker_lost) == workers, 60)
        assert sorted(lost.broker_lost) == workers, f"only {sorted(lost.broker_lost)} noticed within 60 s"
        since = lost.broker_unreachable_since
        assert since is not None and stopping - 1 <= since <= time.time()
        time.sleep(2)  # still away: nothing more is said
        said_while_away = list(outage_lines.messages)

        back_at = time.time()
        private_broker.start(timeout=180)
        back = lab.wait_until(lambda s: not s.broker_lost, 120)
        assert back.broker_unreachable_since is None, f"{sorted(back.broker_lost)} still without the broker"
        away_s = time.time() - stopping
        assert lab.wait_until(lambda s: s.settled > lost.settled, 60).settled > lost.settled  # orders flow again

    assert len(said_while_away) == len(workers) and all(" lost the broker (" in m for m in said_while_away), said_while_away
    lost_lines = [m for m in outage_lines.messages if " lost the broker (" in m]
    back_lines = [m for m in outage_lines.messages if " broker back after " in m]
    assert sorted(line.split(":")[0] for line in lost_lines) == workers, outage_lines.messages
    assert sorted(line.split(":")[0] for line in back_lines) == workers, outage_lines.messages
    assert any(line.startswith("orders: lost the broker") and "orders wait unacknowledged" in line for line in lost_lines)
    for line in back_lines:
        seconds = float(re.search(r"back after ([\d.]+) s", line).group(1))  # type: ignore[union-attr]
        assert back_at - stopped <= seconds <= away_s + 1, line
