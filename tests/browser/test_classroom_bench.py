"""``orderlab bench --classroom --quick`` end to end: the bare pipeline, then lesson 05 in JupyterLab and
headless Chromium, two short steps of the rate slider moved through the page.

It checks that the run works and reports every figure, not how fast it
is (the machine running the tests is shared): the JSON's shape, a
screenshot per step, and that everything it started is gone at the end
(the server and its kernel, the browser, the lesson run's topics and
ledger), and that a tiny run leaves the saved classroom result alone.
"""

from __future__ import annotations

import json

import psutil
import pytest

from orderlab.cleanup import lesson_ledger_dir
from orderlab.cli import main
from orderlab.clients import make_admin
from orderlab.settings import Settings

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROCESSES = {"kernel", "jupyter_server", "broker", "browser"}


def started_here() -> list[str]:
    """The Jupyter and Chromium processes under this test process."""
    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "chrom" in child.name().lower() or "jupyter" in command or "ipykernel" in command:
            names.append(command[:80])
    return names


def test_quick_classroom_run_reports_each_step_and_cleans_up(kafka_bootstrap, chromium, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path / "cache"))
    saved = tmp_path / "cache" / "classroom.json"
    saved.parent.mkdir()
    saved.write_text('{"held_per_s": 1000, "measured_at": 1}')
    artifacts = tmp_path / "shots"

    code = main(["bench", "--classroom", "--quick", "--json", "--artifacts", str(artifacts)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    out = captured.out
    report = json.loads(out)

    assert report["bare_pipeline_per_s"] > 0 and report["slider_top"] == 2000
    assert [step["rate"] for step in report["steps"]] == [50, 100]  # a tiny run goes through both, held or not
    assert report["held_per_s"] in (0, 50, 100)
    assert report["classroom_vs_bare"] == pytest.approx(
        report["held_per_s"] / min(report["bare_pipeline_per_s"], report["slider_top"]), abs=0.001)
    for step in report["steps"]:
        rate = step["rate"]
        # the slider moved through the page: the lesson starts at 100/s, the first step asks 50
        assert 0.8 * rate <= step["placed_per_s"] <= 1.2 * rate, step
        assert step["settled_per_s"] > 0 and step["confirmed_per_s"] > 0 and step["emailed_per_s"] > 0, step
        assert set(step["lag_growth_per_s"]) == {"transactions", "email", "analytics"}, step
        assert 0 < step["p50_ms"] <= step["p99_ms"], step
        assert step["chart_frames"] > 0 and step["chart_hz"] > 0, step  # frames arrived in the browser
        assert set(step["rss_mb"]) == set(step["cpu_s"]) == PROCESSES
        assert all(value is not None and value > 0 for value in step["rss_mb"].values()), step["rss_mb"]
        assert step["cpu_s"]["kernel"] > 0 and step["browser_processes"] >= 2
        assert step["held"] == (not step["shortfalls"])
        shot = artifacts / f"step-{report['steps'].index(step) + 1:02d}-{rate}.png"
        assert step["screenshot"] == str(shot) and shot.read_bytes().startswith(PNG_MAGIC)
    assert set(report["targets"]) == {"classroom_vs_bare", "p99_ms_at_held_steps", "chart_hz_at_held_steps"}
    machine = report["machine"]
    assert machine["cpus"] >= 1 and machine["load_before"] and machine["load_after"]

    # everything it started is gone
    assert started_here() == []
    suffix = report["lesson_run"]
    assert suffix.startswith("-lesson05-")
    admin = make_admin(Settings(bootstrap_servers=kafka_bootstrap))
    try:
        assert [topic for topic in admin.list_topics() if suffix in topic] == []
    finally:
        admin.close()
    assert not list(lesson_ledger_dir().glob(f"{suffix.lstrip('-')}*"))
    # a tiny run's figures mean little: the last real run's result stays
    assert report["saved_to"] is None and json.loads(saved.read_text())["held_per_s"] == 1000
