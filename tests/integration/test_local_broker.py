"""The local broker against a real JVM: start, answer, stop, restart, crash, SASL, CLI.

Each test starts its own broker(s) on free ports in tmp_path (not the shared
session broker), and every broker started here is stopped, or killed, at the end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError

from orderlab.broker import DEMO_SASL_PASSWORD, DEMO_SASL_USER, BrokerError, BrokerState, LocalBroker, free_port
from orderlab.broker.cli import add_broker_parser
from orderlab.broker.procs import command_line

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MakeBroker = Callable[..., LocalBroker]


@pytest.fixture()
def make_broker(tmp_path: Path) -> Iterator[MakeBroker]:
    """LocalBroker factory on free ports; whatever it made is stopped afterwards."""
    made: list[LocalBroker] = []

    def make(name: str = "broker", **kwargs: object) -> LocalBroker:
        broker = LocalBroker(tmp_path / name, kwargs.pop("port", None) or free_port(), **kwargs)  # type: ignore[arg-type]
        made.append(broker)
        return broker

    yield make
    for broker in made:
        if not broker.stop(timeout=10):
            broker.kill()
        assert not broker.is_running()


def admin(bootstrap: str, **config: object) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=10_000, **config)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for value in values:
            producer.send(topic, value)
        producer.flush(timeout=10)
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while consumer.position(partition) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [record.value for record in records]
        return values
    finally:
        consumer.close()


def assert_gone(pid: int) -> None:
    assert command_line(pid) is None, f"pid {pid} still runs"


def test_start_stop_restart_keeps_topics(make_broker: MakeBroker) -> None:
    broker = make_broker()
    assert not broker.answers(timeout=1)
    started = time.monotonic()
    broker.start()
    print(f"first start: {time.monotonic() - started:.1f} s")
    assert broker.answers() and broker.is_running()
    pid = broker.pid
    assert pid is not None and BrokerState.read(broker.data_dir).pid == pid

    started = time.monotonic()
    broker.start()  # idempotent: the same JVM, at once
    assert time.monotonic() - started < 3 and broker.pid == pid

    client = admin(broker.bootstrap_servers)
    client.create_topics([NewTopic("orders-keep", 1, 1)])
    client.close()
    produce(broker.bootstrap_servers, "orders-keep", [b"one", b"two"])

    stopped = time.monotonic()
    assert broker.stop() is True
    print(f"stop: {time.monotonic() - stopped:.1f} s")
    assert_gone(pid)
    assert not broker.is_running() and not broker.answers(timeout=1)
    assert broker.stop() is False  # idempotent

    again = LocalBroker.from_data_dir(broker.data_dir)  # e.g. another process
    started = time.monotonic()
    again.start()
    print(f"restart: {time.monotonic() - started:.1f} s")
    assert again.pid not in (None, pid)
    client = admin(again.bootstrap_servers)
    assert "orders-keep" in client.list_topics()
    client.close()
    assert read_all(again.bootstrap_servers, "orders-keep") == [b"one", b"two"]
    assert broker.stop() is True  # the first handle stops what the second started


def test_kill_then_start_keeps_data(make_broker: MakeBroker) -> None:
    """The chaos scenario: a crash (SIGKILL) and a restart on the same data dir."""
    broker = make_broker()
    broker.start()
    produce(broker.bootstrap_servers, "crash-test", [b"before"])  # auto-created
    pid = broker.pid
    assert pid is not None
    broker.kill()
    assert_gone(pid)
    assert not broker.answers(timeout=1)
    started = time.monotonic()
    broker.start()
    print(f"start after kill: {time.monotonic() - started:.1f} s")
    produce(broker.bootstrap_servers, "crash-test", [b"after"])
    assert read_all(broker.bootstrap_servers, "crash-test") == [b"before", b"after"]


def test_second_broker_on_a_taken_port_is_refused(make_broker: MakeBroker) -> None:
    first = make_broker("first")
    first.start()
    second = make_broker("second", port=first.port)
    with pytest.raises(BrokerError, match="already in use by another process"):
        second.start()
    assert first.answers()  # untouched
    assert second.stop() is False  # and stop does not touch the first
    assert first.answers()


def test_java_dying_at_start_is_reported_with_its_output(make_broker: MakeBroker) -> None:
    broker = make_broker(heap_mb=2)  # the JVM cannot even initialise
    with pytest.raises(BrokerError) as caught:
        broker.start(timeout=30)
    message = str(caught.value)
    assert message.startswith("Kafka exited while starting")
    assert "broker.out" in message and "Error occurred during initialization of VM" in message
    assert not broker.is_running() and BrokerState.read(broker.data_dir).pid is None


def test_sasl_right_credentials_work_wrong_ones_fail(make_broker: MakeBroker) -> None:
    broker = make_broker(sasl=True)
    broker.start()
    assert broker.sasl_bootstrap_servers and broker.sasl_bootstrap_servers != broker.bootstrap_servers
    client = admin(broker.bootstrap_servers)  # PLAINTEXT still works
    client.create_topics([NewTopic("sasl-visible", 1, 1)])
    client.close()
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        sasl = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_plain_username=DEMO_SASL_USER)
        client = admin(broker.sasl_bootstrap_servers, sasl_plain_password=DEMO_SASL_PASSWORD, **sasl)
        assert "sasl-visible" in client.list_topics(), mechanism
        client.close()
        failures_before = broker.log_path.read_text().count("Failed authentication with")
        # kafka-python 3.0 retries a failed login until bootstrap_timeout_ms and
        # then raises KafkaTimeoutError; SaslAuthenticationFailedError shows only
        # in its log (when it reads the broker's answer before the disconnect).
        with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
            KafkaAdminClient(
                bootstrap_servers=broker.sasl_bootstrap_servers,
                bootstrap_timeout_ms=2000,
                sasl_plain_password="wrong-password",
                **sasl,
            )
        assert broker.log_path.read_text().count("Failed authentication with") > failures_before, mechanism


def test_cli_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = argparse.ArgumentParser(prog="orderlab")
    add_broker_parser(top.add_subparsers(dest="command", required=True))
    port, data = str(free_port()), str(tmp_path / "cli")

    def run(*argv: str) -> tuple[int, str]:
        args = top.parse_args(["broker", *argv, "--port", port, "--data-dir", data])
        code = args.func(args)
        return code, capsys.readouterr().out

    try:
        code, out = run("start")
        assert code == 0
        assert out.splitlines() == [
            f"Kafka 4.4.0 is up at 127.0.0.1:{port} (data: {data}, log: {data}/broker.log)",
            f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}",
        ]
        code, out = run("status")
        assert code == 0 and out.startswith(f"Kafka answers at 127.0.0.1:{port} (pid ")
        code, out = run("stop")
        assert code == 0 and out.startswith(f"stopped Kafka at 127.0.0.1:{port}")
        code, out = run("status")
        assert code == 1 and out == f"no Kafka answers at 127.0.0.1:{port}\n"
    finally:
        LocalBroker(Path(data), int(port)).stop()
