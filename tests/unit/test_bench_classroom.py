"""The classroom bench's plan, its held criteria, its report, and the probe it runs in the kernel,
on hand-made figures (no broker, no browser)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from orderlab.bench.ceiling import ThroughputResult
from orderlab.bench.classroom.held import shortfalls
from orderlab.bench.classroom.plan import ClassroomPlan, ladder
from orderlab.bench.classroom.probe import reading
from orderlab.bench.classroom.procs import ProcessUse, ProcessWatch, process_tree
from orderlab.bench.classroom.report import ClassroomReport, StepResult, format_table
from orderlab.cli import main
from orderlab.ui.chartdata import History, Sample


def test_ladder_adds_finer_steps_near_the_bare_rate_and_stops_at_the_slider_top():
    # faster than the slider goes: the finer steps are near its top, which the run is judged against
    assert ladder(3000.0, top=2000) == (100, 250, 500, 1000, 1500, 1600, 1800, 2000)
    assert ladder(620.0, top=2000) == (100, 250, 500, 560, 620, 680, 1000, 1500, 2000)
    # 0.8 × 1900 = 1520 is within 3 % of 1500: one step; 1.1 × 1900 is above the top
    assert ladder(1900.0, top=2000) == (100, 250, 500, 1000, 1500, 1710, 1900, 2000)
    assert ladder(math.nan, top=2000) == (100, 250, 500, 1000, 1500, 2000)
    assert ladder(400.0, top=500) == (100, 250, 320, 360, 400, 440, 500)
    assert all(rate % 10 == 0 for rate in ladder(1234.0))  # the slider moves in tens


def test_a_tiny_plan_has_its_own_two_steps_whatever_the_bare_rate():
    plan = ClassroomPlan.tiny()
    assert plan.rates(1500.0) == (50, 100) and plan.quick
    standard = ClassroomPlan.standard()
    assert standard.rates(1500.0) == ladder(1500.0) and standard.step_s == 60.0
    assert standard.with_bare_orders(5000).bare_orders == 5000


def test_only_a_run_up_the_whole_ladder_finds_the_rate_the_control_room_shows():
    standard = ClassroomPlan.standard()
    assert standard.finds_the_held_rate and standard.with_hold(20).finds_the_held_rate
    assert not ClassroomPlan.tiny().finds_the_held_rate
    assert not standard.with_steps([1500]).finds_the_held_rate


def test_a_hold_is_judged_on_its_last_30_seconds_or_on_its_second_half_when_shorter():
    standard = ClassroomPlan.standard()
    assert (standard.settle_s, standard.window_s) == (30.0, 30.0)
    assert (standard.with_hold(90).settle_s, standard.with_hold(90).window_s) == (60.0, 30.0)
    short = standard.with_hold(10)
    assert (short.settle_s, short.window_s, short.step_s) == (5.0, 5.0, 10.0)
    assert short.poll_s <= short.window_s and short.as_dict()["hold_s"] == 10.0
    fixed = standard.with_steps((100, 250))
    assert fixed.rates(1500.0) == (100, 250) and fixed.as_dict()["steps"] == [100, 250]


@pytest.mark.parametrize("command, problem", [
    (["--classroom", "--steps", "100,55"], "multiples of 10"),
    (["--classroom", "--steps", "250,100"], "must rise"),
    (["--classroom", "--steps", "100,fast"], "whole numbers"),
    (["--classroom", "--steps", "100,2010"], "multiples of 10 from 10 to 2000"),
    (["--classroom", "--hold", "0"], "--hold"),
])
def test_the_classroom_options_say_what_is_wrong_in_one_line(command, problem, capsys):
    assert main(["bench", *command]) != 0
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize("command, problem", [
    (["--hold", "30"], "--hold is an option of the classroom run"),
    (["--steps", "100,250"], "--steps is an option of the classroom run"),
    (["--classroom", "--hold", "3"], "--hold 3 is too short to judge a step: give at least 4 seconds"),
    (["--classroom", "--plot", "x.png"], "--plot draws the standard bench's figures"),
])
def test_classroom_options_out_of_place_are_refused_before_anything_starts(command, problem, capsys):
    assert main(["bench", *command]) != 0
    assert problem in capsys.readouterr().err


def test_the_kernel_counts_with_its_children_and_the_server_alone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        here = os.getpid()
        assert child.pid in {process.pid for process in process_tree(here)()}
        assert [process.pid for process in process_tree(here, children=False)()] == [here]
        assert process_tree(None)() == []
        use = ProcessWatch({"tree": process_tree(here)})
        use.start()
        figures = use.read()["tree"]
        assert figures.processes >= 2 and figures.rss_mb is not None and figures.rss_mb > 0
    finally:
        child.kill()
        child.wait()


def held_figures(**changes: float) -> dict:
    figures = {"placed_per_s": 1000.0, "settled_per_s": 995.0, "confirmed_per_s": 900.0, "emailed_per_s": 890.0,
               "lag_growth_per_s": {"transactions": 2.0, "email": -3.0, "analytics": 9.0}}
    figures.update(changes)
    return figures


def test_a_step_is_held_when_every_share_is_met_and_no_lag_grows_past_one_percent_of_the_rate():
    held = {"window_s": 30.0}
    assert shortfalls(1000, **held, **held_figures()) == ()
    assert shortfalls(1000, **held, **held_figures(lag_growth_per_s={"email": 900.0})) == ("e-mail falls behind by 900/s: its lag grows",)
    assert shortfalls(1000, **held, **held_figures(lag_growth_per_s={"email": 10.5})) != ()  # 1 % of 1000 is 10
    assert shortfalls(1000, **held, **held_figures(settled_per_s=960.0)) == ("settled 960/s of 1,000/s placed",)
    assert shortfalls(1000, **held, **held_figures(emailed_per_s=870.0)) == ("e-mailed 870/s of 900/s confirmed",)
    assert shortfalls(2000, **held, **held_figures(placed_per_s=1500.0, settled_per_s=1500.0)) == ("placed 1,500/s of the 2,000/s asked",)


def test_a_lag_that_grew_by_less_than_one_batch_over_the_window_is_jitter():
    at_100 = held_figures(placed_per_s=100.0, settled_per_s=100.0, confirmed_per_s=90.0, emailed_per_s=90.0)
    # 1 % of 100/s is 1/s: 2/s over 30 s is 60 records, less than a poll's 100
    assert shortfalls(100, window_s=30.0, **{**at_100, "lag_growth_per_s": {"analytics": 2.0}}) == ()
    assert shortfalls(100, window_s=30.0, **{**at_100, "lag_growth_per_s": {"analytics": 3.5}}) != ()  # 105 records
    # a 5 s window of a short hold: 20/s is one batch
    assert shortfalls(100, window_s=5.0, **{**at_100, "lag_growth_per_s": {"email": 19.0}}) == ()
    assert shortfalls(100, window_s=5.0, **{**at_100, "lag_growth_per_s": {"email": 21.0}}) != ()
    # from 333/s up, with 30 s windows, 1 % of the rate is the bound
    assert shortfalls(1000, window_s=30.0, **held_figures(lag_growth_per_s={"email": 10.5})) != ()


def step(rate: int, *, held: bool = True, p99: float = 300.0, chart_hz: float = 1.0) -> StepResult:
    processes = {name: ProcessUse(1.5, 100.0, 1) for name in ("kernel", "jupyter_server", "broker")}
    processes["browser"] = ProcessUse(3.0, 900.0, 8)
    return StepResult(
        rate=rate, window_s=30.0, placed_per_s=float(rate), settled_per_s=float(rate), confirmed_per_s=0.9 * rate, emailed_per_s=0.9 * rate,
        lag_growth_per_s={"transactions": 0.5, "email": 0.0 if held else 0.5 * rate}, latencies_ms=(10.0, 20.0, p99),
        chart_frames=30, chart_hz=chart_hz, kernel_frames_hz=1.0, processes=processes, machine_cpu_s=40.0,
        panel_says="" if held else f"e-mail falls behind by {0.5 * rate:,.0f}/s: its lag grows",
        screenshot=f"artifacts/classroom/step-{rate}.png", shortfalls=() if held else ("e-mail falls behind",),
    )


def report(*steps: StepResult, bare: float = 1250.0) -> ClassroomReport:
    pipeline = ThroughputResult(2000, 2000, 2.0, bare, ((0.0, 0), (2.0, 2000)))
    return ClassroomReport(bare=pipeline, slider_top=2000, steps=steps, machine={"cpus": 2, "load_before": "15.0/14.0/13.0",
                           "load_after": "16.0/15.0/13.0"}, plan=ClassroomPlan.standard().as_dict(), elapsed_s=300.0)


def test_the_report_has_the_held_rate_its_ratio_to_the_bare_rate_and_every_step_figure():
    result = report(step(500), step(1000, p99=800.0, chart_hz=0.9), step(1250, held=False))
    figures = json.loads(json.dumps(result.as_dict()))  # it is JSON
    assert figures["bare_pipeline_per_s"] == 1250.0 and figures["held_per_s"] == 1000
    assert figures["classroom_vs_bare"] == 0.8
    assert [s["rate"] for s in figures["steps"]] == [500, 1000, 1250]
    last = figures["steps"][-1]
    assert last["held"] is False and last["shortfalls"] == ["e-mail falls behind"]
    for key in ("placed_per_s", "settled_per_s", "confirmed_per_s", "emailed_per_s", "p50_ms", "p99_ms", "chart_hz"):
        assert isinstance(last[key], float), key
    assert last["lag_growth_per_s"] == {"email": 625.0, "transactions": 0.5}
    assert set(last["rss_mb"]) == set(last["cpu_s"]) == {"kernel", "jupyter_server", "broker", "browser"}
    assert figures["targets"]["classroom_vs_bare"]["met"] is True
    # the worst held step: 1000/s, with its p99 near 800 ms and its 0.9 Hz; the step not held does not count
    worst = round(result.steps[1].latency(99), 3)
    assert 700 < worst <= 800 and result.steps[0].latency(99) < worst
    assert figures["targets"]["p99_ms_at_held_steps"] == {"value": worst, "target": "<= 1000", "met": True}
    assert figures["targets"]["chart_hz_at_held_steps"]["met"] is False
    assert figures["machine"]["load_before"] == "15.0/14.0/13.0"


def test_the_ratio_divides_by_the_slider_top_when_the_bare_pipeline_is_faster():
    assert report(step(2000), bare=3000.0).classroom_vs_bare == 1.0
    nothing = report(step(100, held=False), bare=3000.0)
    assert nothing.held_per_s == 0 and nothing.classroom_vs_bare == 0.0
    assert math.isnan(report(step(100), bare=math.nan).classroom_vs_bare)


def test_the_table_has_a_row_per_step_and_says_why_a_step_was_not_held():
    table = format_table(report(step(500), step(1000, held=False)))
    assert "500/s" in table and "1,000/s" in table
    assert "1,000/s not held: e-mail falls behind" in table
    assert "held in the classroom: 500 orders/s" in table
    assert "load 15.0/14.0/13.0 → 16.0/15.0/13.0" in table


def test_the_kernel_probe_reads_the_control_room_and_only_the_new_e_mail_latencies():
    now = time.time()
    history = History()
    for i in range(11):
        history.append(Sample(now - 10 + i, placed=100 * i, confirmed=90 * i, lag={"orderlab-email-lesson05-0000aaaa": 50 * i}))
    lab = SimpleNamespace(rate=100.0, settings=SimpleNamespace(topic_suffix="-lesson05-0000aaaa"),
                          email_latencies=lambda: [(now - 3.0, now - 2.9), (now - 1.2, now - 1.0), (now - 0.5, now - 0.2)])
    room = SimpleNamespace(
        lab=lab, history=history, frames=11, rate=SimpleNamespace(value=100), running=True,
        status=SimpleNamespace(value="running"), behind=SimpleNamespace(value="e-mail falls behind by 50/s: its lag grows"),
        held=SimpleNamespace(value=""),
        last_snapshot=SimpleNamespace(taken_at=now, placed=1000, confirmed=900, declined=100, emails_sent=880),
    )
    figures = json.loads(reading(room, now - 2.0, growth_since=now - 10.5))
    assert figures["latency_ms"] == [200.0, 300.0]  # the e-mail sent 2.9 s ago was read before
    assert figures["latest_sent"] == pytest.approx(now - 0.2)
    assert figures["snapshot"]["emails_sent"] == 880 and figures["topic_suffix"] == "-lesson05-0000aaaa"
    assert figures["lag_growth_per_s"] == {"email": 50.0}
    assert figures["behind"].startswith("e-mail falls behind")
    assert "lag_growth_per_s" not in json.loads(reading(room, now))
