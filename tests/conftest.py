"""Shared fixtures. Integration tests talk to a real Kafka broker: the one in
``KAFKA_BOOTSTRAP_SERVERS`` when it answers (``make test`` starts a
throw-away one), otherwise one started here for the session and stopped at
the end. Kafka is never mocked."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from orderlab.settings import Settings

if TYPE_CHECKING:
    from orderlab.broker import LocalBroker


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured and _answers(configured):
        yield configured
        return
    from orderlab.broker import LocalBroker, free_port

    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port())
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator["LocalBroker"]:
    """A broker of this test module's own, on a free port: its tests may stop, start and corrupt it.

    The session broker (``kafka_bootstrap``) may be shared with other runs,
    so it is never stopped. This one is stopped, and its data dir removed
    with pytest's temporary files, when the module ends.
    """
    from orderlab.broker import LocalBroker, free_port

    broker = LocalBroker(tmp_path_factory.mktemp("private-kafka"), port=free_port())
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def test_topic_suffixes(kafka_bootstrap: str) -> Iterator[list[str]]:
    """The topic suffixes the tests made; every topic named with one is deleted when the session ends.

    On a developer's broker (``KAFKA_BOOTSTRAP_SERVERS``) a run of the suite
    left hundreds of topics behind, and a broker with thousands of topics
    answers every metadata request more slowly. One deletion at the end costs
    less than one per test. Runs the tests start through the library (a
    Lab's ``-lesson05-…``, ``-demo-…`` suffixes) are removed too, when they
    appeared during this session and are not running: a second ``make test``
    against the same broker leaves no more topics than the first.
    """
    from orderlab.cleanup import RUN_SUFFIX, find_runs
    from orderlab.clients import make_admin

    def topics() -> set[str]:
        admin = make_admin(Settings(bootstrap_servers=kafka_bootstrap))
        try:
            return set(admin.list_topics())
        finally:
            admin.close()

    before = topics()
    suffixes: list[str] = []
    yield suffixes
    try:
        admin = make_admin(Settings(bootstrap_servers=kafka_bootstrap))
        try:
            running = {run.suffix for run in find_runs(admin) if run.active}  # a class on the same broker keeps its run
            doomed = [name for name in set(admin.list_topics()) - before
                      if any(suffix in name for suffix in suffixes)
                      or ((match := RUN_SUFFIX.search(name.removesuffix(".dlq"))) and match.group(0) not in running)]
            if doomed:
                admin.delete_topics(doomed)
        finally:
            admin.close()
    except Exception as exc:  # noqa: BLE001 - tidying up must not turn a passing run into a failing one
        print(f"could not delete the tests' topics on {kafka_bootstrap}: {exc}")


@pytest.fixture()
def settings(kafka_bootstrap: str, tmp_path: Path, test_topic_suffixes: list[str]) -> Settings:
    """Settings on fresh topics and groups, with a ledger of this test's own."""
    suffix = f"-test-{uuid.uuid4().hex[:8]}"
    test_topic_suffixes.append(suffix)
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_suffix=suffix,
        order_details_partitions=4,
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        connect_timeout_s=10,
    )
