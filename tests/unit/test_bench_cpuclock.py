"""Reading the machine's CPU time from /proc/stat (a file written here, so any platform runs it)."""

import os

import pytest

from orderlab.bench.cpuclock import CpuClock, machine_busy_s, per_order_us


def stat_file(tmp_path, line: str):
    path = tmp_path / "stat"
    path.write_text(line + "\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n")
    return path


def test_busy_is_everything_but_idle_and_iowait_and_guest_is_not_counted_twice(tmp_path):
    #            user nice system idle iowait irq softirq steal guest guest_nice
    path = stat_file(tmp_path, "cpu  1000 100 300 5000 400 20 30 50 999 999")
    assert machine_busy_s(path) == pytest.approx((1000 + 100 + 300 + 20 + 30 + 50) / os.sysconf("SC_CLK_TCK"))


@pytest.mark.parametrize("content", ["", "intr 1 2 3", "cpu  a b c d e", "cpu  1 2"])
def test_an_unreadable_stat_gives_none(tmp_path, content):
    assert machine_busy_s(stat_file(tmp_path, content)) is None
    assert machine_busy_s(tmp_path / "missing") is None


def test_the_clock_gives_the_difference_since_it_started(tmp_path):
    path = stat_file(tmp_path, "cpu  1000 0 0 5000 0 0 0 0 0 0")
    clock = CpuClock(path)
    path.write_text("cpu  1000 0 " + str(os.sysconf("SC_CLK_TCK")) + " 9000 0 0 0 0 0 0\n")  # one busy second later
    spent = clock.read()
    assert spent.machine_s == pytest.approx(1.0)
    assert spent.process_s >= 0
    assert CpuClock(tmp_path / "missing").read().machine_s is None


def test_per_order():
    assert per_order_us(0.5, 1000) == pytest.approx(500.0)
    assert per_order_us(None, 1000) != per_order_us(None, 1000)  # NaN
    assert per_order_us(1.0, 0) != per_order_us(1.0, 0)
