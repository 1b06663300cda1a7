"""`orderlab chaos` arguments: bad ones are one clear line; the report reads well."""

from __future__ import annotations

import argparse

import pytest

from orderlab.chaos import SCENARIOS, add_parser, run_scenario
from orderlab.chaos.cli import format_report
from orderlab.chaos.report import ScenarioResult


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="orderlab")
    add_parser(top.add_subparsers(dest="command"))
    return top


def test_defaults() -> None:
    args = parser().parse_args(["chaos"])
    assert (args.orders, args.rate, args.scenario, args.json, args.exactly_once) == (300, 200.0, None, False, False)
    args = parser().parse_args(["chaos", "--scenario", "smtp_down", "--scenario", "rebalance", "--json", "--orders", "40"])
    assert args.scenario == ["smtp_down", "rebalance"] and args.json and args.orders == 40


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "meteor_strike"], "invalid choice: 'meteor_strike'"),
    (["--orders", "5"], "--orders must be at least 20, got 5"),
    (["--orders", "many"], "--orders must be a whole number, got 'many'"),
    (["--rate", "0"], "--rate must be > 0, got 0"),
    (["--rate", "inf"], "--rate must be > 0, got inf"),
    (["--rate", "fast"], "--rate must be a number of orders per second, got 'fast'"),
])
def test_bad_arguments_are_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["chaos", *argv])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "nope"}, "unknown chaos scenario 'nope'"),
    ({"name": "worker_crash", "orders": 3}, "orders must be a whole number >= 20"),
    ({"name": "worker_crash", "rate": -1}, "rate must be > 0"),
])
def test_run_scenario_refuses_bad_arguments_before_touching_kafka(kwargs: dict, message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        run_scenario(name, **kwargs)


def test_format_report() -> None:
    results = [ScenarioResult(n, 10, 0, 0, 0, 0, 0, 0, False, n != "rebalance", 1.0, f"{n} detail") for n in SCENARIOS]
    report = {
        "scenarios": [r.as_dict() for r in results],
        "passed": False,
        "exactly_once_comparison": {
            "duplicates_in_output": {"at_least_once": 7, "exactly_once": 0},
            "double_charged": {"at_least_once": 0, "exactly_once": 0},
        },
    }
    text = format_report(report)
    row = next(line for line in text.splitlines() if line.startswith("rebalance "))
    assert row.split()[:4] == ["rebalance", "at-least-once", "10", "0"] and row.endswith("FAIL")
    assert "at-least-once 7, exactly-once 0" in text
    assert text.endswith("FAILED: see the scenarios marked FAIL")


def test_repeat_is_a_whole_number_of_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["chaos"]).repeat == 1
    assert parser().parse_args(["chaos", "--repeat", "30"]).repeat == 30
    for bad, message in (("0", "--repeat must be at least 1, got 0"), ("x", "--repeat must be a whole number, got 'x'")):
        with pytest.raises(SystemExit):
            parser().parse_args(["chaos", "--repeat", bad])
        assert message in capsys.readouterr().err


def test_run_chaos_repeats_every_scenario_and_sums_the_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import types

    from orderlab.chaos import cli

    calls: list[str] = []

    def fake_run(name: str, **kwargs: object) -> ScenarioResult:
        calls.append(name)
        lost = 1 if calls.count("broker_restart") == 2 and name == "broker_restart" else 0  # the second one loses an order
        return ScenarioResult(name, 10, lost, 0, 0, 0, 0, 0, True, not lost, 2.0, "detail")

    broker = types.SimpleNamespace(start=lambda: calls.append("start"))
    monkeypatch.setattr(cli, "private_broker", lambda progress=None: contextlib.nullcontext(broker))
    monkeypatch.setattr(cli, "run_scenario", fake_run)
    report = cli.run_chaos(["broker_restart", "smtp_down"], repeat=3, compare=False)
    # the broker is (re)started if need be before every run but the first
    assert calls == ["broker_restart"] + ["start", "smtp_down", "start", "broker_restart"] * 2 + ["start", "smtp_down"]
    assert [s["run"] for s in report["scenarios"]] == [1, 1, 2, 2, 3, 3]
    assert not report["passed"] and report["repeat"] == 3
    assert report["summary"]["broker_restart"] == {
        "runs": 3, "passed": 2, "failed": 1, "runs_with_lost_orders": 1, "lost_total": 1,
        "seconds_mean": 2.0, "seconds_max": 2.0,
    }
    assert report["summary"]["smtp_down"]["runs_with_lost_orders"] == 0
    text = format_report(report)
    assert "broker_restart: 2/3 runs passed; 1 run(s) lost orders, 1 lost in all" in text
    row = next(line for line in text.splitlines() if line.startswith("broker_restart ") and line.endswith("FAIL"))
    assert row.split()[:3] == ["broker_restart", "2", "exactly-once"]
    with pytest.raises(ValueError, match="repeat must be a whole number >= 1"):
        cli.run_chaos(["smtp_down"], repeat=0)


def test_brokers_3_runs_the_cluster_scenarios_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["chaos"]).brokers == 1
    args = parser().parse_args(["chaos", "--brokers", "3", "--scenario", "broker_kill", "--scenario", "leader_kill"])
    assert args.func(args) == 2  # refused before any broker starts
    err = capsys.readouterr().err
    assert "--brokers 3 runs leader_kill only, not broker_kill: run those with --brokers 1" in err
    with pytest.raises(SystemExit):
        parser().parse_args(["chaos", "--brokers", "2"])
    assert "invalid choice: 2" in capsys.readouterr().err


def test_the_readme_states_the_resend_window_of_the_library() -> None:
    """The README's chaos section names how many e-mails a kill can re-send: the constant's value, not a copy."""
    from pathlib import Path

    from orderlab.services.email import RESEND_WINDOW

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## When things break: `orderlab chaos`"):]
    section = section[:section.index("\n## ", 1)]
    assert f"A kill of the e-mail role can send at most {RESEND_WINDOW} e-mails twice" in section
    assert "RESEND_WINDOW" in section
    for name in SCENARIOS:
        assert f"| `{name}` |" in section, name
