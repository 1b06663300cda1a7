"""The whole pipeline in one process, and the demo command."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from orderlab.cli import main
from orderlab.lab import Lab
from orderlab.ledger import LedgerLocationError
from waiting import wait_for

pytestmark = pytest.mark.integration


def test_lab_accounts_for_every_order_and_reports_lag(settings):
    with Lab(settings, rate=300, workers=2, limit=300) as lab:
        snapshot = lab.wait_for_orders(300, timeout=60)
        assert snapshot.placed == 300 and snapshot.settled == 300
        lab.scale_transactions(3)
        assert lab.snapshot().workers == 3
        assert set(lab.snapshot().lag) == {settings.group_id(r) for r in ("transactions", "email", "analytics")}
    result = lab.reconcile()
    assert result.ok, result
    assert result.orders_confirmed + result.orders_declined == 300
    assert result.emails_sent == result.orders_confirmed
    assert len(lab.emails()) == result.emails_sent


def test_groups_settle_with_every_worker_holding_partitions(settings):
    with Lab(settings, rate=0, workers=2) as lab:
        assert wait_for(lab.groups_settled, timeout=30)
        roles = lab.snapshot(with_lag=False).roles
        held = [roles[worker.name]["partitions"] for worker in lab.workers]
        assert min(held) >= 1 and sum(held) == settings.order_details_partitions
        assert roles["email"]["partitions"] == settings.order_details_partitions
        assert roles["analytics"]["partitions"] == 3 * settings.order_details_partitions  # orders and both outcomes
        lab.scale_transactions(3)
        assert not lab.groups_settled()  # the new worker holds nothing yet
        assert wait_for(lab.groups_settled, timeout=30)
        assert all(worker.partitions > 0 for worker in lab.workers)


def test_lab_rate_changes_while_running(settings):
    with Lab(settings, rate=0, workers=1) as lab:
        time.sleep(0.5)
        assert lab.snapshot(with_lag=False).placed == 0
        lab.set_rate(200)
        snapshot = lab.wait_until(lambda s: s.placed >= 100, timeout=15)
        assert snapshot.placed >= 100
        with pytest.raises(ValueError):
            lab.scale_transactions(0)


def test_lab_knobs_refuse_use_before_start(settings):
    lab = Lab(settings)
    with pytest.raises(RuntimeError, match="call lab.start"):
        lab.set_rate(10)
    lab.stop()  # stopping a lab that never started is fine


def test_demo_command_json(kafka_bootstrap, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ORDERLAB_DB_URL", f"sqlite:///{tmp_path}/ledger.db")
    code = main(["demo", "--orders", "200", "--rate", "200", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["orders_placed"] == 200 and report["lost"] == 0 and report["duplicated"] == 0
    assert report["orders_confirmed"] + report["orders_declined"] == 200
    assert report["emails_sent"] == report["orders_confirmed"]
    assert report["analytics_orders_seen"] == 200


def test_unreachable_broker_is_one_line_naming_the_address():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orderlab", "demo", "--orders", "10", "--rate", "10"],
        env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_home())},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 20
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1" in lines[0] and "orderlab broker start" in lines[0]
    assert "Traceback" not in result.stderr


def tmp_home():
    import tempfile

    return tempfile.mkdtemp()


@pytest.mark.parametrize("argv, message", [
    (["demo", "--orders", "-5"], "--orders must be > 0"),
    (["demo", "--rate", "fast"], "--rate must be a number"),
    (["demo", "--rate", "nan"], "--rate must be a finite number"),
    (["run", "nosuchrole"], "unknown role 'nosuchrole'"),
])
def test_bad_arguments_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_environment_value_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "nonsense")
    assert main(["demo", "--orders", "1"]) == 2
    assert "is not host:port" in capsys.readouterr().err


def test_lab_refuses_an_unusable_ledger_right_after_connecting(settings, tmp_path):
    (tmp_path / "afile").write_text("a file, not a folder")
    url = f"sqlite:///{tmp_path}/afile/ledger.db"
    lab = Lab(settings.with_(db_url=url))
    with pytest.raises(LedgerLocationError) as caught:
        lab.start()
    assert str(caught.value).startswith(f"ORDERLAB_DB_URL={url}: cannot keep the ledger at ")
    assert "is a file, not a folder" in str(caught.value)
    assert not lab.running and lab.catcher is None  # nothing started that would need stopping


def test_counters_survive_stop(settings):
    with Lab(settings, rate=200, workers=1, limit=40) as lab:
        lab.wait_for_orders(40, timeout=30)
    after = lab.snapshot(with_lag=False)
    assert after.placed == 40 and after.settled == 40 and after.confirmations_read == after.confirmed
