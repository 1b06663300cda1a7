"""Fixtures for running roles as real processes (``python -m orderlab run ROLE``).

Each test gets topics and groups of its own (a fresh ``ORDERLAB_TOPIC_SUFFIX``)
and a ledger file of its own (``ORDERLAB_DB_URL``), handed to the processes
through their environment exactly as Compose or Kubernetes would. Every
process is started in a session of its own and killed in teardown if a test
left it running. Logs go to files (a pipe nobody reads would fill up and block
the process), and every wait on them is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from roleproc import RoleProcess

from orderlab.settings import Settings
from orderlab.topics import delete_topics, ensure_topics


@pytest.fixture()
def proc_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of this test's own topics, groups and ledger; its topics exist."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_suffix=f"-proc-{uuid.uuid4().hex[:8]}",
        order_details_partitions=4,
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        connect_timeout_s=10,
    )
    ensure_topics(settings)
    yield settings
    try:
        delete_topics(settings)
    except Exception:  # noqa: BLE001 - tidying a shared dev broker must not fail a test
        pass


@pytest.fixture()
def role_env(proc_settings: Settings) -> dict[str, str]:
    """The environment a role process reads its settings from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLAB_") or k == "ORDERLAB_CACHE_DIR"}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=proc_settings.bootstrap_servers,
        ORDERLAB_TOPIC_SUFFIX=proc_settings.topic_suffix,
        ORDERLAB_ORDER_DETAILS_PARTITIONS=str(proc_settings.order_details_partitions),
        ORDERLAB_DB_URL=proc_settings.db_url,
        ORDERLAB_CONNECT_TIMEOUT_S=str(proc_settings.connect_timeout_s),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture()
def spawn(role_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., RoleProcess]]:
    """``spawn("transactions", "--interval", "1")`` starts ``orderlab run ...``; killed at teardown."""
    started: list[RoleProcess] = []

    def start(role: str, *args: str, env: dict[str, str] | None = None) -> RoleProcess:
        log_path = tmp_path / f"{role}-{len(started)}.log"
        with open(log_path, "wb") as log_file:
            popen = subprocess.Popen(
                [sys.executable, "-m", "orderlab", "run", role, *args],
                env=env or role_env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = RoleProcess(role, popen, log_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
