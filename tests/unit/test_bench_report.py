"""The bench's arithmetic and its report, on hand-made figures (no broker)."""

import json
import math

import pytest

from orderlab.bench.ceiling import ThroughputResult
from orderlab.bench.dashboard import DashboardResult
from orderlab.bench.paced import RateWindow
from orderlab.bench.report import BenchReport, format_table
from orderlab.bench.roles import RoleCost
from orderlab.bench.stats import percentile, rate_error_pct, sustained_rate, time_to_reach


def test_percentiles_interpolate_and_ignore_order():
    values = [50.0, 10.0, 40.0, 20.0, 30.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 50.0
    assert percentile(values, 25) == 20.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_sustained_rate_leaves_out_the_ramp_and_the_tail():
    # 1000 orders: a slow start (100 in 5 s), then 100/s steady, then a slow tail
    timeline = [(0.0, 0), (5.0, 100), (13.0, 900), (20.0, 1000)]
    assert time_to_reach(timeline, 100) == 5.0
    assert time_to_reach(timeline, 500) == pytest.approx(9.0)
    assert sustained_rate(timeline, 1000) == pytest.approx(100.0)
    assert math.isnan(sustained_rate([(0.0, 0), (1.0, 50)], 1000))  # never got to 90 %


def test_rate_error_is_relative_and_absolute():
    assert rate_error_pct(100, 98) == pytest.approx(2.0)
    assert rate_error_pct(100, 103) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        rate_error_pct(0, 1)


def report(p99_at_100: float = 30.0, dashboard_lag_end: int = 100, ceiling_cpu_s: float = 0.12) -> BenchReport:
    fast = tuple(float(v) for v in range(1, 101))  # p99 = 99.01
    return BenchReport(
        ceiling=ThroughputResult(1000, 1000, 1.0, 10_000.0, ((0.0, 0), (1.0, 1000)), cpu_s=ceiling_cpu_s, machine_cpu_s=0.08),
        pipeline=ThroughputResult(1000, 1000, 2.0, 7_000.0, ((0.0, 0), (2.0, 1000)), cpu_s=0.2, machine_cpu_s=0.5),
        windows=(
            RateWindow(10, 10.1, 20.0),
            RateWindow(100, 99.0, 20.0, latencies_ms=(10.0,) * 95 + (p99_at_100,) * 5),
            RateWindow(1000, 1000.0, 20.0, latencies_ms=fast),
            RateWindow(2000, 1990.0, 15.0),
        ),
        dashboard=DashboardResult(1.0, 15.0, 15, 1.0, 120.0, 300.0, 100, dashboard_lag_end, 2000.0),
        machine={"cpus": 2, "memory_gib": 24, "python": "3.11", "kafka_python": "3.0.12", "load_before": "0.1", "load_after": "0.2"},
        plan={"orders": 1000},
        elapsed_s=60.0,
        roles=(RoleCost("orders", 1000, 0.05, 0.04, machine_cpu_s=0.06), RoleCost("email", 900, 0.3, 0.045, finished=False)),
    )


def test_report_has_the_required_keys_and_judges_the_targets():
    data = report().as_dict()
    json.dumps(data)  # serialisable
    for key in ("ceiling_orders_per_s", "pipeline_orders_per_s", "pipeline_vs_ceiling", "latency_ms", "rate_error_pct", "dashboard_hz"):
        assert key in data
    assert data["pipeline_vs_ceiling"] == 0.7
    assert set(data["latency_ms"]) == {"100", "1000"}
    assert data["latency_ms"]["1000"]["p50"] == pytest.approx(50.5)
    assert data["rate_error_pct"] == 1.0  # 10.1 against 10
    assert data["targets"]["pipeline_vs_ceiling"]["met"] and data["all_targets_met"]


def test_a_missed_target_and_a_growing_backlog_are_reported():
    slow = report(p99_at_100=80.0, dashboard_lag_end=100 + 2000 * 2)
    targets = slow.targets()
    assert not targets["latency_p99_ms_at_100"]["met"]
    assert not targets["dashboard_hz"]["met"]  # 1 Hz, but the consumer lag grew by two seconds of orders
    assert not slow.all_targets_met
    table = format_table(slow)
    assert "NOT MET" in table and "growing" in table and "some targets not met" in table


def test_cpu_per_order_is_reported_for_the_ceiling_the_pipeline_and_each_role_alone():
    data = report().as_dict()
    assert data["cpu_us_per_order"] == {"ceiling": 120.0, "pipeline": 200.0, "roles_alone": 90.0}
    assert data["roles_alone"]["orders"] == {"orders": 1000, "orders_per_s": 20_000.0, "cpu_us_per_order": 40.0,
                                             "machine_cpu_us_per_order": 60.0, "finished": True}
    assert data["roles_alone"]["email"]["machine_cpu_us_per_order"] is None  # not measured: not made up
    assert data["roles_alone"]["email"]["orders_per_s"] == 3000.0 and not data["roles_alone"]["email"]["finished"]
    table = format_table(report())
    assert "CPU per order: pipeline" in table and "200 µs" in table
    assert "email alone" in table and "50 µs CPU per order" in table


def test_the_pipeline_may_spend_at_most_twice_the_ceilings_cpu_per_order():
    within = report()  # 200 µs against 120 µs
    assert within.as_dict()["pipeline_cpu_vs_ceiling"] == pytest.approx(1.667)
    assert within.targets()["pipeline_cpu_vs_ceiling"] == {"value": 1.667, "target": "<= 2", "met": True}
    beyond = report(ceiling_cpu_s=0.08)  # 200 µs against 80 µs: 2.5 times
    assert beyond.targets()["pipeline_cpu_vs_ceiling"]["met"] is False and not beyond.all_targets_met
    assert "CPU per order: pipeline / ceiling" in format_table(beyond)
    unmeasured = report(ceiling_cpu_s=0.0)
    assert unmeasured.targets()["pipeline_cpu_vs_ceiling"]["value"] is None


def test_machine_cpu_per_order_says_how_many_cores_the_target_rate_needs():
    data = report().as_dict()
    assert data["machine_cpu_us_per_order"]["ceiling"] == 80.0 and data["machine_cpu_us_per_order"]["pipeline"] == 500.0
    # the target is 0.6 of the ceiling's 10,000/s: 6,000 orders/s at 500 µs of machine CPU each
    assert data["cores_at_target"] == {"rate": 6000.0, "needed": 3.0, "machine": 2}
    table = format_table(report())
    assert "cores 6,000 orders/s needs" in table and "this machine has 2" in table and "machine 500 µs" in table


def test_without_the_machine_figure_nothing_is_made_up():
    bare = BenchReport(
        ceiling=ThroughputResult(10, 10, 1.0, 10.0, ((0.0, 0), (1.0, 10)), cpu_s=0.01),
        pipeline=ThroughputResult(10, 10, 1.0, 10.0, ((0.0, 0), (1.0, 10)), cpu_s=0.01),
        windows=(), dashboard=None, machine={"cpus": 4}, plan={}, elapsed_s=1.0,
    )
    data = bare.as_dict()
    assert data["machine_cpu_us_per_order"] == {"ceiling": None, "pipeline": None, "roles_alone": None}
    assert data["cores_at_target"]["needed"] is None
    json.dumps(data)
    assert "n/a" in format_table(bare)


def test_the_ceiling_reads_what_the_seed_roles_read():
    """The ceiling stands for the pipeline's Kafka work: one reader per consuming role, of the same topics."""
    from orderlab.bench.ceiling import READS, sample_payloads
    from orderlab.seed import SEED

    assert READS == {spec.name: tuple(read.topic for read in spec.reads) for spec in SEED.roles if spec.reads}
    payloads = sample_payloads(400)
    declined = sum(1 for payload in payloads if not payload.confirmed)
    assert 0 < declined < len(payloads) / 2  # routed as the default payment rules route real orders
