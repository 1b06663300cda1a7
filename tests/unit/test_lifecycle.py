"""The Service lifecycle, the worker pool and the Lab's orchestration, with
fake Kafka clients (``fakes.py``): no broker is contacted. What Kafka does
is tested against a real broker in ``tests/integration``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import fakes
from orderlab.events import ORDER, CONFIRMED, encode_order
from orderlab.generator import OrderFactory
from orderlab.lab import Lab, LabState
from orderlab.pool import WorkerPool
from orderlab.seed import SEED
from orderlab.services import Service, ServiceError, ServiceState
from orderlab.services.base import declared_counters
from orderlab.services.consumer import ConsumerService
from orderlab.settings import Settings
from orderlab.topology import Read, RoleSpec, TopicSpec, Topology, TopologyError, load_topology
from orderlab.wiring import Wiring

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_suffix="-unit", connect_timeout_s=2)


class Ticker(Service):
    """A service that counts loops, and fails where told to."""

    counter_names = ("ticks",)

    def __init__(self, *args, fail_in: str = "", **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.fail_in = fail_in
        self.closed = threading.Event()

    def setup(self) -> None:
        if self.fail_in == "setup":
            raise ConnectionError("no broker")

    def loop(self) -> None:
        while not self.wait(0.01):
            self.counters.add("ticks")
            if self.fail_in == "loop":
                raise RuntimeError("the work broke")

    def close(self) -> None:
        self.closed.set()


TICKER = RoleSpec("ticker", Ticker)


def ticker(**options) -> Ticker:  # noqa: ANN003
    return Ticker(SETTINGS, TICKER, **options)


# -- the Service base ---------------------------------------------------------------

def test_a_service_runs_after_start_and_stops_idempotently() -> None:
    service = ticker()
    assert service.state is ServiceState.NEW and not service.alive
    service.start()
    assert service.state is ServiceState.RUNNING and service.alive and service.started_at is not None
    assert service.start() is service  # a second start does nothing
    assert service.stop() and service.stop()
    assert service.state is ServiceState.STOPPED and not service.alive and service.closed.is_set()
    with pytest.raises(ServiceError, match="make a new Ticker"):
        service.start()


def test_stopping_a_service_that_never_started_is_fine() -> None:
    service = ticker()
    assert service.stop()
    assert service.state is ServiceState.STOPPED


def test_a_failed_setup_is_raised_by_start_and_the_service_is_closed() -> None:
    service = ticker(fail_in="setup")
    with pytest.raises(ConnectionError, match="no broker"):
        service.start()
    assert service.closed.wait(2)
    assert service.state is ServiceState.FAILED and isinstance(service.error, ConnectionError)


def test_a_crash_in_the_loop_is_kept_and_shown_in_status() -> None:
    service = ticker(fail_in="loop").start()
    assert service.closed.wait(2)
    assert service.state is ServiceState.FAILED
    assert service.status()["error"] == "the work broke" and service.status()["ticks"] == 1


def test_every_role_reports_the_shared_counters_from_the_start() -> None:
    for spec in SEED.roles:
        names = declared_counters(spec.cls)
        if spec.consumes:
            assert {"consumed", "dead_lettered", "commits", "commit_failures", "retries", "rewinds"} <= set(names)
    wiring = Wiring(SETTINGS, SEED, ledger=object(), controls=None)  # type: ignore[arg-type]
    analytics = wiring.service("analytics")
    assert analytics.status()["consumed"] == 0 and analytics.status()["dead_lettered"] == 0


def test_a_client_used_before_start_is_a_clear_error() -> None:
    analytics = Wiring(SETTINGS, SEED).service("analytics")
    with pytest.raises(ServiceError, match="analytics has no consumer: it is new"):
        analytics.consumer  # noqa: B018


# -- a consumer role over fake clients ---------------------------------------------------

class Doubler(ConsumerService):
    """Reads orders, writes their ids to ``doubled``."""

    counter_names = ("doubled",)

    def process(self, batch):  # noqa: ANN001, ANN201
        self.counters.add("doubled", len(batch))
        return [self.producer.send(self.ports.output("doubled"), key=r.key, value=r.key) for r in batch]


DOUBLE = Topology("double", topics=(TopicSpec("orders"), TopicSpec("doubled")),
                  roles=(RoleSpec("doubler", Doubler, reads=(Read("orders", ORDER),), writes=("doubled",), scales=True),))


def put_orders(broker: fakes.FakeBroker, topic: str, count: int, seed: int = 1) -> None:
    factory = OrderFactory(seed=seed, customers=3)
    for _ in range(count):
        order = factory.make()
        broker.append(topic, order.order_id.encode(), encode_order(order))


def wait(condition, seconds: float = 5.0) -> bool:  # noqa: ANN001
    deadline = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        deadline.wait(0.01)
    return condition()


def test_a_consumer_role_commits_after_its_output_and_sends_bad_records_to_the_dead_letter_topic(monkeypatch) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    put_orders(broker, "orders-unit", 10)
    broker.append("orders-unit", b"bad", b"not json")
    with Wiring(SETTINGS, DOUBLE).service("doubler") as worker:
        assert wait(lambda: worker.counters["consumed"] == 11)
    assert len(broker.records("doubled-unit")) == 10
    letters = broker.records("orders-unit.dlq")
    assert [letter.key for letter in letters] == [b"bad"]
    assert sum(broker.committed["orderlab-doubler-unit"].values()) == 11


def test_a_crashed_worker_commits_nothing_of_its_last_batch(monkeypatch) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    put_orders(broker, "orders-unit", 20)
    worker = Wiring(SETTINGS, DOUBLE).service("doubler")
    worker.crash(min_records=1)
    worker.start()
    assert wait(lambda: not worker.alive)
    assert worker.counters["crashes"] == 1 and worker.counters["crash_batch_records"] > 0
    assert worker.error is None and worker.state is ServiceState.STOPPED
    assert broker.committed["orderlab-doubler-unit"] == {}  # the output was sent, the offsets never committed
    assert len(broker.records("doubled-unit")) == worker.counters["crash_batch_records"]


def test_an_unknown_topic_is_an_error_not_a_fallback_decoder() -> None:
    ports = DOUBLE.role("doubler").ports(SETTINGS)
    assert ports.decoder("orders-unit") is ORDER.decode
    with pytest.raises(TopologyError, match="doubler reads no topic 'doubled-unit'"):
        ports.decoder("doubled-unit")
    with pytest.raises(TopologyError, match="doubler writes no topic 'orders'"):
        ports.output("orders")


# -- the worker pool ----------------------------------------------------------------------

def test_the_pool_scales_reuses_free_slots_and_keeps_retired_workers_counted() -> None:
    built: list[int] = []

    def build(slot: int) -> Ticker:
        built.append(slot)
        return ticker(worker=slot, name=f"ticker-{slot}")

    pool = WorkerPool("ticker", build, limit=4)
    assert pool.scale(3) == 3 and [w.worker for w in pool.workers] == [0, 1, 2]
    assert pool.scale(1) == 1 and len(pool.retired) == 2 and not any(w.alive for w in pool.retired)
    assert pool.scale(2) == 2 and [w.worker for w in pool.workers] == [0, 1]
    assert len(pool.every_worker) == 4
    with pytest.raises(ValueError, match="between 1 and 4"):
        pool.scale(5)
    with pytest.raises(IndexError, match="there is no worker 7"):
        pool.crash(7)
    with pytest.raises(TypeError, match="cannot be crashed"):
        pool.crash(0)
    for worker in pool.retire_all():
        worker.stop()
    assert built == [0, 1, 2, 1]


def test_the_pool_replaces_a_dead_worker_in_its_slot() -> None:
    pool = WorkerPool("ticker", lambda slot: ticker(worker=slot, fail_in="loop" if not pool.retired else ""))
    pool.scale(1)
    assert wait(lambda: not pool.workers[0].alive)
    assert pool.replace_dead() == 1
    assert pool.workers[0].alive and pool.workers[0].worker == 0 and len(pool.retired) == 1
    for worker in pool.retire_all():
        worker.stop()


# -- the Lab ------------------------------------------------------------------------------

@pytest.fixture()
def lab_settings(tmp_path: Path) -> Settings:
    return SETTINGS.with_(db_url=f"sqlite:///{tmp_path / 'ledger.db'}", order_details_partitions=fakes.PARTITIONS)


def test_the_lab_runs_the_seed_over_fake_clients_and_stops_cleanly(monkeypatch, lab_settings: Settings) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    lab = Lab(lab_settings, rate=0, workers=2, decline_probability=0.0)
    assert lab.state is LabState.NEW
    with pytest.raises(RuntimeError, match="the lab is new, not running"):
        lab.set_rate(10)
    with lab:
        assert lab.state is LabState.RUNNING and lab.worker_count == 2
        lab.generate(30, rate=1000)
        last = lab.wait_until(lambda s: s.confirmed == 30 and s.emails_sent == 30 and s.analytics_orders_seen == 30, 20)
        assert (last.placed, last.confirmed, last.emails_sent, last.analytics_orders_seen) == (30, 30, 30, 30)
        assert last.totals["transactions"]["confirmed"] == 30 and set(last.totals) == set(SEED.role_names)
        assert list(last.roles) == ["orders", "email", "analytics", "transactions-0", "transactions-1"]
        assert lab.scale_transactions(3) == 3
    assert lab.state is LabState.STOPPED and not lab.running
    assert all(producer.closed for producer in broker.producers)
    assert all(consumer.closed for consumer in broker.consumers)
    assert lab.catcher is not None and not lab.catcher.running and len(lab.emails()) == 30  # stopped, its inbox kept
    lab.stop()  # idempotent


def test_a_failed_start_closes_exactly_what_had_started_in_reverse(monkeypatch, lab_settings: Settings) -> None:  # noqa: ANN001
    broker = fakes.install(monkeypatch)
    closed: list[str] = []

    class Broken(ConsumerService):
        def setup(self) -> None:
            raise ConnectionError("the broker went away")

        def process(self, batch):  # noqa: ANN001, ANN201
            return []

    topology = SEED.with_role(RoleSpec("broken", Broken, reads=(Read("order_confirmed", CONFIRMED),)), name="broken")
    monkeypatch.setattr("orderlab.wiring.Wiring.close", lambda self: closed.append("wiring") or self._made.close())
    lab = Lab(lab_settings, topology=topology)
    with pytest.raises(ConnectionError, match="the broker went away"):
        lab.start()
    assert lab.state is LabState.STOPPED
    started = [w for pool in lab.pools.values() for w in pool.every_worker]
    assert started and not any(worker.alive for worker in started)  # the roles that had started are stopped
    assert "orders" not in lab.pools  # the order source starts last: it never started
    assert closed == ["wiring"] and all(p.closed for p in broker.producers) and lab.producer is None


def test_a_topology_is_checked_when_declared_and_found_by_name() -> None:
    with pytest.raises(TopologyError, match="undeclared topic"):
        Topology("bad", topics=(TopicSpec("a"),), roles=(RoleSpec("r", Ticker, writes=("b",)),))
    with pytest.raises(TopologyError, match="role\\(s\\) r twice"):
        Topology("bad", topics=(), roles=(RoleSpec("r", Ticker), RoleSpec("r", Ticker)))
    assert load_topology("seed") is SEED
    with pytest.raises(TopologyError, match="unknown topology 'shopx'"):
        load_topology("shopx")
    with pytest.raises(TopologyError, match="cannot import nosuchmodule"):
        load_topology("nosuchmodule:X")
    with pytest.raises(TopologyError, match="unknown role 'mail'.*choose one of orders, transactions, email, analytics"):
        SEED.role("mail")
