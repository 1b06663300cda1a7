"""Shared fixtures. Integration tests talk to a real Kafka broker: the one in
``KAFKA_BOOTSTRAP_SERVERS`` when it answers (``make test`` starts a
throw-away one), otherwise one started here for the session and stopped at
the end. Kafka is never mocked."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from orderlab.settings import Settings


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


@pytest.fixture()
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings on fresh topics and groups, with a ledger of this test's own."""
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_suffix=f"-test-{uuid.uuid4().hex[:8]}",
        order_details_partitions=4,
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        connect_timeout_s=10,
    )
