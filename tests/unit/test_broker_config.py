"""The local broker's pure parts: rendered config, state file, tool checks, CLI parsing.

No Java is started here (a fake ``java`` script stands in where one is needed).
"""

from __future__ import annotations

import argparse
import base64
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from orderlab.broker import (
    DEMO_SASL_PASSWORD,
    DEMO_SASL_USER,
    KAFKA_VERSION,
    BrokerConfig,
    BrokerError,
    BrokerState,
    LocalBroker,
    default_cache_dir,
    default_data_dir,
    ensure_jars,
    free_port,
)
from orderlab.broker.cli import add_broker_parser, broker_from_args, default_port
from orderlab.broker.config import new_cluster_id, render_properties, scram_format_args
from orderlab.broker.jars import first_error, kafka_home, parse_java_major
from orderlab.broker.procs import port_is_free

POM = Path(__file__).resolve().parents[2] / "orderlab" / "broker" / "kafka-pom.xml"


def parse_properties(text: str) -> dict[str, str]:
    """Enough of java.util.Properties for what we render (no continuation lines)."""
    props = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value.replace("\\\\", "\\")
    return props


# -- versions and rendering ---------------------------------------------------


def test_kafka_version_is_the_poms() -> None:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert match and KAFKA_VERSION == match.group(1) == "4.4.0"


def test_server_properties_single_node_without_sasl(tmp_path: Path) -> None:
    config = BrokerConfig(tmp_path, port=19092, controller_port=19093)
    props = parse_properties(config.render_server_properties())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "kafka-data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    # a restart after kill() waits for the old registration to expire: keep it short
    assert int(props["broker.session.timeout.ms"]) <= 3000
    # a lone broker's controlled shutdown drops the markers of a transaction committed meanwhile
    assert props["controlled.shutdown.enable"] == "false"
    # lesson 10 watches a segment expire: the broker-wide check must come within seconds, not 5 minutes
    assert int(props["log.retention.check.interval.ms"]) <= 10_000
    assert not any("sasl" in key.lower() or "SASL" in value for key, value in props.items())


def test_server_properties_with_sasl_keeps_plaintext_between_brokers(tmp_path: Path) -> None:
    props = parse_properties(BrokerConfig(tmp_path, 19092, 19093, sasl_port=19094).render_server_properties())
    assert props["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:19092",
        "CONTROLLER://127.0.0.1:19093",
        "SASL_PLAINTEXT://127.0.0.1:19094",
    ]
    assert "SASL_PLAINTEXT://127.0.0.1:19094" in props["advertised.listeners"]
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    prefix = "listener.name.sasl_plaintext."
    assert props[prefix + "sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert props[prefix + "plain.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required user_orderlab="orderlab-demo-secret";'
    )
    for mechanism in ("scram-sha-256", "scram-sha-512"):
        assert "ScramLoginModule required;" in props[f"{prefix}{mechanism}.sasl.jaas.config"]


def test_demo_credentials_and_scram_format_arguments() -> None:
    assert (DEMO_SASL_USER, DEMO_SASL_PASSWORD) == ("orderlab", "orderlab-demo-secret")
    assert scram_format_args() == [
        "--add-scram", "SCRAM-SHA-256=[name=orderlab,password=orderlab-demo-secret]",
        "--add-scram", "SCRAM-SHA-512=[name=orderlab,password=orderlab-demo-secret]",
    ]  # fmt: skip


def test_properties_escaping() -> None:
    text = render_properties({"a": "C:\\kafka", "b": "two\nlines", "c": " lead"})
    assert text == "a=C:\\\\kafka\nb=two\\nlines\nc=\\ lead\n"


def test_log4j_writes_to_the_data_dir(tmp_path: Path) -> None:
    props = parse_properties(BrokerConfig(tmp_path, 1, 2).render_log4j2())
    assert props["appender.file.fileName"] == str(tmp_path / "broker.log")
    assert props["rootLogger.appenderRef.file.ref"] == props["appender.file.name"]
    assert props["shutdownHook"] == "disable"


def test_cluster_id_is_16_random_bytes_base64url() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cluster_id in ids:
        assert len(cluster_id) == 22 and "=" not in cluster_id
        assert not cluster_id.startswith("-")  # the storage tool would read it as an option
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# -- state file ---------------------------------------------------------------


def test_state_file_round_trip(tmp_path: Path) -> None:
    assert BrokerState.read(tmp_path) is None
    state = BrokerState(port=9092, controller_port=40001, sasl_port=40002, sasl=True, pid=1234)
    state.write(tmp_path)
    assert BrokerState.read(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == ["orderlab-broker.json"]  # no temp file left


def test_unreadable_state_file_counts_as_none(tmp_path: Path) -> None:
    (tmp_path / "orderlab-broker.json").write_text("{not json")
    assert BrokerState.read(tmp_path) is None
    with pytest.raises(BrokerError, match="no broker was started"):
        LocalBroker.from_data_dir(tmp_path)


def test_from_data_dir_restores_port_and_sasl(tmp_path: Path) -> None:
    BrokerState(port=19999, controller_port=40001, sasl_port=40002, sasl=True).write(tmp_path)
    broker = LocalBroker.from_data_dir(tmp_path)
    assert (broker.port, broker.sasl, broker.bootstrap_servers) == (19999, True, "127.0.0.1:19999")
    assert broker.sasl_bootstrap_servers == "127.0.0.1:40002"
    assert not broker.is_running()


def test_sasl_client_config(tmp_path: Path) -> None:
    BrokerState(port=19999, controller_port=40001, sasl_port=40002, sasl=False).write(tmp_path)
    with pytest.raises(BrokerError, match="not started with SASL"):
        LocalBroker.from_data_dir(tmp_path).sasl_client_config()
    BrokerState(port=19999, controller_port=40001, sasl_port=40002, sasl=True).write(tmp_path)
    assert LocalBroker.from_data_dir(tmp_path).sasl_client_config("PLAIN") == {
        "bootstrap_servers": "127.0.0.1:40002",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "orderlab",
        "sasl_plain_password": "orderlab-demo-secret",
    }


def test_only_kafka_on_this_data_dirs_properties_counts_as_ours(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, 19092)
    props = str(tmp_path.resolve() / "server.properties")
    cases = {
        ("/usr/bin/java", "-cp", "x/*", "kafka.Kafka", props): True,  # /proc argv
        ("/usr/bin/java", "-cp", "x/*", "kafka.Kafka", props + ".old"): False,
        ("/usr/bin/java", "kafka.tools.StorageTool", "format", "-c", props): False,
        (f"/usr/bin/java -Xmx512m -cp x/* kafka.Kafka {props}",): True,  # ps on macOS: one string
        (f"/usr/bin/java -cp x/* kafka.Kafka /elsewhere{props}",): False,
    }
    for argv, ours in cases.items():
        monkeypatch.setattr("orderlab.broker.jvm.command_line", lambda pid, argv=argv: list(argv))
        assert broker._is_ours(4242) is ours, argv


# -- directories and ports ----------------------------------------------------


def test_cache_and_data_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert default_data_dir(9092) == tmp_path / "broker-9092"
    assert kafka_home() == tmp_path / "kafka-4.4.0"
    assert LocalBroker(port=9999).data_dir == (tmp_path / "broker-9999").resolve()
    monkeypatch.delenv("ORDERLAB_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "orderlab"


def test_free_port_and_taken_port(tmp_path: Path) -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not port_is_free(port)
        with pytest.raises(BrokerError, match=f"127.0.0.1:{port} is already in use by another process"):
            LocalBroker(tmp_path, port).start(timeout=5)
    assert BrokerState.read(tmp_path) is None  # nothing was launched


def test_stop_never_signals_a_process_that_is_not_our_broker(tmp_path: Path) -> None:
    """A stale state file whose pid now belongs to something else must not kill it."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        BrokerState(port=free_port(), controller_port=free_port(), pid=sleeper.pid).write(tmp_path)
        broker = LocalBroker.from_data_dir(tmp_path)
        assert not broker.is_running()
        assert broker.stop(timeout=1) is False
        broker.kill()
        assert sleeper.poll() is None  # still alive
        assert BrokerState.read(tmp_path).pid is None  # the stale pid is forgotten
    finally:
        sleeper.kill()
        sleeper.wait()


# -- tool checks ----------------------------------------------------------------


def fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "11.0.2" 2019-01-15 LTS', 11),
        ("no version here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_no_java_gives_one_line_with_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BrokerError) as caught:
        ensure_jars(tmp_path / "cache", quiet=True)
    message = str(caught.value)
    assert "\n" not in message
    assert "Java is not on PATH" in message and "17" in message
    assert "docker compose up -d kafka" in message


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "java", """echo 'openjdk version "11.0.2" 2019-01-15' >&2""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(BrokerError, match=r"is Java 11, but Kafka 4\.4\.0 needs Java 17\+"):
        ensure_jars(tmp_path / "cache", quiet=True)


def test_no_maven_gives_one_line_with_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "java", """echo 'openjdk version "17.0.2" 2022-01-18' >&2""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(BrokerError) as caught:
        ensure_jars(tmp_path / "cache", quiet=True)
    message = str(caught.value)
    assert "\n" not in message
    assert "Maven (`mvn`) is not on PATH" in message and "docker compose up -d kafka" in message
    assert not (tmp_path / "cache" / "kafka-4.4.0" / "libs").exists()


def test_fetched_jars_need_no_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Once the marker is there, ensure_jars returns without Maven (and without printing)."""
    fake_tool(tmp_path / "bin", "java", """echo 'openjdk version "17.0.2" 2022-01-18' >&2""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    home = tmp_path / "cache" / "kafka-4.4.0"
    (home / "libs").mkdir(parents=True)
    (home / ".complete").write_text("done\n")
    assert ensure_jars(tmp_path / "cache") == home / "libs"


def test_failed_maven_leaves_no_marker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_tool(tmp_path / "bin", "java", """echo 'openjdk version "17.0.2" 2022-01-18' >&2""")
    fake_tool(tmp_path / "bin", "mvn", "echo '[ERROR] Could not transfer artifact: Network is unreachable'; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(BrokerError, match="Maven could not fetch.*Network is unreachable"):
        ensure_jars(tmp_path / "cache")
    home = tmp_path / "cache" / "kafka-4.4.0"
    assert not (home / ".complete").exists() and not (home / "libs").exists()
    assert "fetching Apache Kafka 4.4.0 jars from Maven Central (once)..." in capsys.readouterr().err


def test_maven_error_line_is_picked_despite_colour_codes() -> None:
    output = (
        "\x1b[0m\x1b[0m[ERROR] No plugin found for prefix 'dependency' in the current project\n"
        "[ERROR] \n[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.\n"
    )
    assert first_error(output) == "No plugin found for prefix 'dependency' in the current project"
    assert first_error("") == "no output"


# -- CLI parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "port"),
    [
        (None, 9092),
        ("", 9092),
        ("127.0.0.1:19092", 19092),
        ("localhost:29092,other:9092", 29092),
        ("PLAINTEXT://localhost:39092", 39092),
        ("kafka:9094", 9092),
        ("localhost", 9092),
        ("localhost:notaport", 9092),
    ],
)
def test_default_port(env: str | None, port: int) -> None:
    assert default_port(env) == port


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="orderlab")
    add_broker_parser(top.add_subparsers(dest="command", required=True))
    return top


def test_cli_parses_the_subcommands(tmp_path: Path) -> None:
    args = parser().parse_args(["broker", "start", "--port", "19092", "--data-dir", str(tmp_path), "--sasl", "--timeout", "9"])
    assert (args.port, args.data_dir, args.sasl, args.timeout) == (19092, tmp_path, True, 9.0)
    assert callable(args.func)
    for action in ("stop", "status", "fetch"):
        assert callable(parser().parse_args(["broker", action]).func)
    with pytest.raises(SystemExit):
        parser().parse_args(["broker", "stop", "--sasl"])  # --sasl is for start only
    with pytest.raises(SystemExit):
        parser().parse_args(["broker", "start", "--port", "70000"])


def test_cli_port_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:29092")
    assert broker_from_args(parser().parse_args(["broker", "status"])).port == 29092
    BrokerState(port=39092, controller_port=40001).write(tmp_path)
    assert broker_from_args(parser().parse_args(["broker", "stop", "--data-dir", str(tmp_path)])).port == 39092
    assert broker_from_args(parser().parse_args(["broker", "stop", "--data-dir", str(tmp_path), "--port", "1234"])).port == 1234


def test_cli_prints_broker_errors_as_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    args = parser().parse_args(["broker", "fetch"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("orderlab broker: Java is not on PATH") and err.count("\n") == 1


def test_status_of_nothing_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    args = parser().parse_args(["broker", "status", "--port", str(port), "--data-dir", str(tmp_path)])
    assert args.func(args) == 1
    assert capsys.readouterr().out == f"no Kafka answers at 127.0.0.1:{port}\n"
