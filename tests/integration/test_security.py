"""Security settings from Settings to every client, against a real SASL broker.

The broker package's own tests cover raw kafka-python logins; these cover
orderlab's path: Settings -> clients -> a whole Lab, the one-line error for
wrong credentials (in Python and from the CLI), and that the repository holds
no credentials beyond the local demo one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from orderlab import clients
from orderlab.broker import DEMO_SASL_PASSWORD, DEMO_SASL_USER, LocalBroker, free_port
from orderlab.clients import AuthenticationFailed, BrokerUnavailable, make_admin, make_consumer, make_producer, security_config
from orderlab.lab import Lab
from orderlab.settings import Settings, new_run_suffix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
MECHANISMS = ("PLAIN", "SCRAM-SHA-256")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker of this module's own with a SASL_PLAINTEXT listener and the demo user."""
    broker = LocalBroker(tmp_path_factory.mktemp("sasl-broker"), free_port(), sasl=True)
    broker.start()
    try:
        yield broker
    finally:
        if not broker.stop(timeout=20):
            broker.kill()


def sasl_settings(broker: LocalBroker, mechanism: str, password: str = DEMO_SASL_PASSWORD, **extra: object) -> Settings:
    assert broker.sasl_bootstrap_servers is not None
    return Settings(
        bootstrap_servers=broker.sasl_bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username=DEMO_SASL_USER,
        sasl_password=password,
        **extra,  # type: ignore[arg-type]
    )


def failed_logins(broker: LocalBroker) -> int:
    return broker.log_path.read_text(errors="replace").count("Failed authentication with")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_whole_pipeline_runs_over_sasl(sasl_broker: LocalBroker, mechanism: str, tmp_path: Path) -> None:
    settings = sasl_settings(
        sasl_broker, mechanism, topic_suffix=new_run_suffix("sasl"), order_details_partitions=2,
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
    )
    with Lab(settings, rate=100, workers=1, limit=30) as lab:
        snapshot = lab.wait_for_orders(30, timeout=60)
    assert snapshot.settled == 30
    result = lab.reconcile()  # read back over SASL too
    assert result.ok, result
    assert result.orders_placed == 30 and result.orders_confirmed + result.orders_declined == 30
    assert result.emails_sent == result.orders_confirmed


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_is_one_clear_error(sasl_broker: LocalBroker, mechanism: str) -> None:
    settings = sasl_settings(sasl_broker, mechanism, password="not-the-demo-password", connect_timeout_s=3)
    before = failed_logins(sasl_broker)
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed) as caught:
        make_admin(settings)
    assert time.monotonic() - started < 15  # connect_timeout_s, not kafka-python's 30 s
    message = str(caught.value)
    assert "\n" not in message
    assert f"login as {DEMO_SASL_USER!r} with {mechanism} failed" in message
    assert "ORDERLAB_SASL_PASSWORD" in message and "not-the-demo-password" not in message
    assert isinstance(caught.value, BrokerUnavailable)  # every existing one-line handler catches it
    assert failed_logins(sasl_broker) > before  # the broker really refused a login


def test_a_plaintext_client_at_the_sasl_listener_is_refused(sasl_broker: LocalBroker) -> None:
    assert sasl_broker.sasl_bootstrap_servers is not None
    settings = Settings(bootstrap_servers=sasl_broker.sasl_bootstrap_servers, connect_timeout_s=3)
    with pytest.raises(BrokerUnavailable):
        make_admin(settings)


def test_demo_with_a_wrong_password_prints_one_line(sasl_broker: LocalBroker, tmp_path: Path) -> None:
    assert sasl_broker.sasl_bootstrap_servers is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": sasl_broker.sasl_bootstrap_servers,
        "ORDERLAB_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ORDERLAB_SASL_MECHANISM": "SCRAM-SHA-256",
        "ORDERLAB_SASL_USERNAME": DEMO_SASL_USER,
        "ORDERLAB_SASL_PASSWORD": "not-the-demo-password",
        "ORDERLAB_CONNECT_TIMEOUT_S": "3",
        "ORDERLAB_DB_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "orderlab", "demo", "--orders", "5", "--rate", "10"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("orderlab: Kafka at ") and "login as 'orderlab' with SCRAM-SHA-256 failed" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_security_settings_reach_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers, consumers and admin clients are all made with the same security options."""
    made: list[dict[str, object]] = []
    monkeypatch.setattr(clients, "_connect", lambda settings, factory, config: made.append(config))
    settings = Settings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="not-the-real-one",
        ssl_cafile="/etc/ca.pem", ssl_certfile="/etc/client.pem", ssl_keyfile="/etc/client.key",
    )
    make_producer(settings)
    make_producer(settings, transactional_id="t")
    make_consumer(settings, "group")
    make_admin(settings)
    expected = {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u",
        "sasl_plain_password": "not-the-real-one", "ssl_cafile": "/etc/ca.pem", "ssl_certfile": "/etc/client.pem",
        "ssl_keyfile": "/etc/client.key",
    }
    assert len(made) == 4
    for config in made:
        assert {key: config.get(key) for key in expected} == expected
    assert security_config(Settings()) == {"security_protocol": "PLAINTEXT"}


# Only the documented local demo credential, and values that say they are fake, may appear.
ALLOWED_SECRETS = {DEMO_SASL_PASSWORD}
FAKE_MARKERS = ("wrong", "not-the", "example", "changeme")
QUOTED = re.compile(r"(?i)(password|passwd|secret|api_?key)\w*[\"']?\s*[:=]\s*([\"'])([^\"'\n]+)\2")
CONFIG_LINE = re.compile(r"(?i)^\s*-?\s*\w*(password|passwd|secret|api_?key)\w*\s*[:=]\s*([^\s#\"'$]+)\s*$")
SCANNED = {".py", ".ipynb", ".yml", ".yaml", ".md", ".toml", ".cfg", ".ini", ".sh", ".env", ".properties", ".json"}


def test_no_credentials_in_the_repository_beyond_the_local_demo_one() -> None:
    offenders = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [
            d for d in subfolders
            if not d.startswith(".") and d not in ("node_modules", "__pycache__", "build") and not d.endswith(".egg-info")
        ]
        for name in files:
            path = Path(folder, name)
            if path.suffix not in SCANNED and name not in ("Makefile", "Dockerfile"):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                values = [m.group(3) for m in QUOTED.finditer(line)]
                if path.suffix in (".yml", ".yaml", ".env", ".properties", ".cfg", ".ini"):
                    values += [m.group(2) for m in CONFIG_LINE.finditer(line)]
                for value in values:
                    if value in ALLOWED_SECRETS or any(marker in value.lower() for marker in FAKE_MARKERS):
                        continue
                    if "{" in value or value.startswith(("$", "os.environ")):
                        continue  # a template or a reference, not a value
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not offenders, "credentials in the repository:\n" + "\n".join(offenders)
