"""``orderlab bench`` on a real broker, on a tiny load: it runs and reports sane numbers.

No figure is held to a target here (the machine running the tests is
shared and its speed unknown); the targets live in the bench's own output.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from orderlab.cli import main
from orderlab.clients import make_admin
from orderlab.settings import Settings
from waiting import wait_for

pytestmark = pytest.mark.integration


def test_quick_bench_reports_every_figure_as_json(kafka_bootstrap, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ORDERLAB_DB_URL", f"sqlite:///{tmp_path}/ledger.db")
    plot = tmp_path / "bench.png"
    topics_before = _topics(kafka_bootstrap)
    code = main(["bench", "--quick", "--json", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)

    assert report["ceiling_orders_per_s"] > 0 and report["pipeline_orders_per_s"] > 0
    assert report["pipeline_vs_ceiling"] == pytest.approx(report["pipeline_orders_per_s"] / report["ceiling_orders_per_s"], rel=0.01)
    assert report["ceiling"]["completed"] == report["ceiling"]["orders"]
    assert report["pipeline"]["completed"] == report["pipeline"]["orders"]
    # exactly the planned orders in both runs: the warm-up leaves no token behind to place one more
    assert report["ceiling"]["orders"] == report["pipeline"]["orders"] == report["plan"]["orders"]

    assert set(report["latency_ms"]) == {"100", "1000"}
    for rate, figures in report["latency_ms"].items():
        assert figures["samples"] > 0, rate
        assert 0 < figures["p50"] <= figures["p99"], rate

    assert set(report["rates"]) == {"10", "100", "1000", "2000"}
    for rate, figures in report["rates"].items():
        assert figures["achieved"] > 0, rate
    assert report["rate_error_pct"] == max(figures["error_pct"] for figures in report["rates"].values())
    assert math.isfinite(report["rate_error_pct"]) and report["rate_error_pct"] >= 0

    assert report["dashboard"] is not None and "error" not in report["dashboard"], report["dashboard"]
    assert report["dashboard_hz"] >= 0 and report["dashboard"]["rate"] == 2000

    # where an order's CPU goes: the ceiling, the pipeline, and each role alone over orders waiting for it
    assert report["cpu_us_per_order"]["ceiling"] > 0 and report["cpu_us_per_order"]["pipeline"] > 0
    assert set(report["roles_alone"]) == {"orders", "transactions", "email", "analytics"}
    for role, figures in report["roles_alone"].items():
        assert figures["finished"] and figures["orders"] > 0 and figures["cpu_us_per_order"] > 0, (role, figures)
    assert report["cpu_us_per_order"]["roles_alone"] == pytest.approx(
        sum(figures["cpu_us_per_order"] for figures in report["roles_alone"].values()), abs=0.5)
    if pathlib.Path("/proc/stat").exists():  # the machine's CPU holds this process's, and the broker's on top
        machine = report["machine_cpu_us_per_order"]
        for run in ("ceiling", "pipeline"):
            assert machine[run] > 0.9 * report["cpu_us_per_order"][run], (run, machine, report["cpu_us_per_order"])
        assert report["cores_at_target"]["needed"] > 0 and report["cores_at_target"]["machine"] == report["machine"]["cpus"]

    assert set(report["targets"]) == {"pipeline_vs_ceiling", "latency_p99_ms_at_100", "latency_p99_ms_at_1000", "rate_error_pct", "dashboard_hz",
                                 "pipeline_cpu_vs_ceiling"}
    assert report["all_targets_met"] == all(t["met"] for t in report["targets"].values())
    assert report["machine"]["cpus"] >= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every phase ran on topics of its own and deleted them afterwards
    left = lambda: {name for name in _topics(kafka_bootstrap) - topics_before if "-bench-" in name}  # noqa: E731
    assert wait_for(lambda: not left(), timeout=15), left()


def _topics(bootstrap: str) -> set[str]:
    admin = make_admin(Settings(bootstrap_servers=bootstrap))
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_bench_refuses_a_tiny_order_count_in_one_line(capsys):
    assert main(["bench", "--orders", "5"]) == 2
    assert "--orders must be at least 100" in capsys.readouterr().err
