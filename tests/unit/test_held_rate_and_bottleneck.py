"""When a setting cannot be held, the control room says so: the wording (pure), the classroom run's
saved result read back, and both in the panel over a stand-in Lab (no Kafka)."""

from __future__ import annotations

import json
import time

import pytest

from orderlab.held_rate import HeldRate, held_line, held_rate_path, load_held_rate, save_result
from orderlab.ui import ControlRoom
from orderlab.ui.bottleneck import behind_line, falling_behind
from orderlab.ui.chartdata import Sample
from test_ui import StandInLab


# -- the wording -----------------------------------------------------------------------------

def test_the_group_whose_lag_grows_is_named_with_how_far_it_falls_behind():
    assert behind_line({"transactions": 1.0, "email": 900.0, "analytics": -4.0}, 2000, placed_per_s=2000) == \
        "e-mail falls behind by 900/s: its lag grows"


def test_several_groups_are_named_fastest_first():
    growth = {"email": 40.0, "transactions": 220.0, "analytics": 31.0}
    assert behind_line(growth, 300, placed_per_s=300) == \
        "transactions falls behind by 220/s, e-mail by 40/s and analytics by 31/s: their lag grows"
    assert behind_line({"email": 40.0, "transactions": 220.0}, 300) == \
        "transactions falls behind by 220/s and e-mail by 40/s: their lag grows"


def test_a_generator_that_cannot_place_the_rate_asked_is_named_too():
    assert behind_line({"email": 0.0}, 2000, placed_per_s=1480.4) == "orders places only 1,480 of the 2,000/s asked"
    assert behind_line({"email": 500.0}, 2000, placed_per_s=1480.0) == \
        "orders places only 1,480 of the 2,000/s asked; e-mail falls behind by 500/s: its lag grows"


def test_noise_is_not_falling_behind_and_nothing_is_said_without_enough_to_judge():
    # 2 % of the rate, and at least 10/s, is a lag's jitter between batches
    assert falling_behind({"email": 39.0, "transactions": 9.0}, 2000) == []
    assert falling_behind({"email": 9.5}, 100) == [] and falling_behind({"email": 10.5}, 100) == [("email", 10.5)]
    assert behind_line({"email": 3.0, "transactions": -2.0}, 1000, placed_per_s=990) == "every group keeps up"
    assert behind_line({"email": 900.0}, 1000, seconds=5.0) == ""  # a knob just moved
    assert behind_line({"email": 900.0}, 0) == ""  # nothing asked
    assert behind_line({}, 1000) == ""  # no lag measured


# -- the saved classroom result -----------------------------------------------------------------

def test_the_saved_result_is_read_back_from_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path / "cache"))
    assert held_rate_path() == tmp_path / "cache" / "classroom.json"
    assert load_held_rate() is None  # never measured
    result = {"bare_pipeline_per_s": 1800.0, "held_per_s": 1000, "steps": [], "machine": {"load_before": "15.00/14.00/12.00"}}
    path = save_result(result)
    assert path == held_rate_path() and json.loads(path.read_text())["held_per_s"] == 1000
    held = load_held_rate()
    assert held is not None and held.held_per_s == 1000.0 and held.bare_pipeline_per_s == 1800.0
    assert held.load_before == "15.00/14.00/12.00" and abs(held.measured_at - time.time()) < 60
    assert not list(path.parent.glob(".*.tmp"))  # written whole, then renamed


@pytest.mark.parametrize("body", ["", "{not json", "[1, 2]", '{"held_per_s": "fast", "measured_at": 1}',
                                  '{"held_per_s": -5, "measured_at": 1}', '{"held_per_s": 1000}'])
def test_a_saved_file_the_bench_did_not_write_is_no_result_and_no_error(tmp_path, body):
    path = tmp_path / "classroom.json"
    path.write_text(body)
    assert load_held_rate(path) is None


def test_the_held_line_names_the_rate_and_the_day():
    measured = time.mktime((2026, 6, 14, 10, 0, 0, 0, 0, -1))
    assert held_line(HeldRate(1000.0, 1800.0, measured)) == "this machine held 1,000 orders/s in its last classroom run (14 Jun 2026)"
    assert held_line(HeldRate(0.0, 1800.0, measured)) == "this machine held none of the rates of its last classroom run (14 Jun 2026)"
    assert held_line(None) == ""


# -- in the panel ------------------------------------------------------------------------------------

def test_the_panel_shows_the_last_classroom_runs_held_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert ControlRoom(StandInLab()).held.value == ""
    save_result({"bare_pipeline_per_s": 1800.0, "held_per_s": 1500, "measured_at": time.mktime((2026, 6, 14, 10, 0, 0, 0, 0, -1))})
    room = ControlRoom(StandInLab())
    assert room.held.value == "this machine held 1,500 orders/s in its last classroom run (14 Jun 2026)"
    assert "orderlab-held" in room.held._dom_classes


def test_the_panel_names_the_group_that_falls_behind_after_a_knob_settles():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=10)
    assert room.start()
    lab.set_rate(1000)
    room.refresher.stop()  # the test makes the samples itself
    room.history.clear()
    now = time.time()
    for i in range(21):  # e-mail's lag grows by 900 a second, the others keep up
        room.history.append(Sample(now - 20 + i, placed=1000 * i, confirmed=900 * i,
                                   lag={"orderlab-email-x": 900 * i, "orderlab-transactions-x": 5}))
    room._judge_from = 0.0  # the knob moved long ago
    assert room.behind_now(now) == "e-mail falls behind by 900/s: its lag grows"
    room.rate.value = 1200  # a knob moved: the next seconds are not judged
    assert room.behind_now(now) == ""
    room.stop()
