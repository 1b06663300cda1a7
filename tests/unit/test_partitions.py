"""The partition table and the lag growth, without Kafka: made-up offsets and
holders in, rows, HTML and slopes out; and the control room showing the table
over a stand-in Lab."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition

from orderlab.lag import PartitionOffsets, group_lag
from orderlab.ui import ControlRoom, Sample
from orderlab.ui.laggrowth import lag_growth
from orderlab.ui.mode import lesson_seconds
from orderlab.ui.partitions import NOBODY, PartitionRow, partition_frame, partition_html, partition_rows, worker_holders

SUFFIX = "-lesson05-0000aaaa"
TX, EMAIL, ANALYTICS = (f"orderlab-{role}{SUFFIX}" for role in ("transactions", "email", "analytics"))
DETAILS, CONFIRMED, DECLINED = (f"{topic}{SUFFIX}" for topic in ("order_details", "order_confirmed", "order_declined"))


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def reading() -> dict[str, dict[TopicPartition, PartitionOffsets]]:
    """What a lag meter might return: three partitions for transactions, two topics of two for analytics."""
    return {
        TX: {tp(DETAILS, 2): PartitionOffsets(5, 9), tp(DETAILS, 0): PartitionOffsets(10, 30), tp(DETAILS, 1): PartitionOffsets(-1, 4)},
        ANALYTICS: {tp(DETAILS, 0): PartitionOffsets(30, 30), tp(DETAILS, 1): PartitionOffsets(3, 4),
                    tp(CONFIRMED, 0): PartitionOffsets(-1, 2), tp(CONFIRMED, 1): PartitionOffsets(-1, 0)},
    }


def test_partition_offsets_lag_counts_from_the_start_when_nothing_is_committed():
    assert PartitionOffsets(10, 30).lag == 20 and PartitionOffsets(-1, 4).lag == 4 and PartitionOffsets(40, 30).lag == 0
    assert group_lag(reading()) == {TX: 20 + 4 + 4, ANALYTICS: 0 + 1 + 2 + 0}


def test_a_group_reading_one_topic_gets_a_row_per_partition_with_its_owner():
    holders = {TX: {tp(DETAILS, 0): ["transactions-0"], tp(DETAILS, 2): ["transactions-1", "transactions-0"]}}
    rows = [row for row in partition_rows(reading(), holders, topic_suffix=SUFFIX) if row.group == "transactions"]
    assert rows == [
        PartitionRow("transactions", "order_details", "0", "transactions-0", 10, 30, 20),
        PartitionRow("transactions", "order_details", "1", NOBODY, None, 4, 4),  # nobody holds it, nothing committed
        PartitionRow("transactions", "order_details", "2", "transactions-0, transactions-1", 5, 9, 4),  # handed over
    ]


def test_a_group_reading_several_topics_gets_a_row_per_topic_in_reading_order():
    holders = {ANALYTICS: {tp(DETAILS, 0): ["analytics"], tp(DETAILS, 1): ["analytics"], tp(CONFIRMED, 0): ["analytics"]}}
    rows = [row for row in partition_rows(reading(), holders, topic_suffix=SUFFIX) if row.group == "analytics"]
    assert rows == [
        PartitionRow("analytics", "order_details", "all 2", "analytics", 33, 34, 1),
        PartitionRow("analytics", "order_confirmed", "all 2", f"analytics, {NOBODY}", None, 2, 2),
    ]
    assert sum(row.lag for row in partition_rows(reading(), holders)) == sum(group_lag(reading()).values())


def test_without_a_suffix_topic_names_stay_whole_and_no_reading_gives_no_rows():
    assert {row.topic for row in partition_rows(reading(), {})} == {DETAILS, CONFIRMED}
    assert partition_rows({}, {}) == [] and partition_rows({TX: {}}, {}) == []


@dataclass
class Worker:
    name: str
    group_id: str | None
    held: frozenset = frozenset()
    alive: bool = True


def test_worker_holders_groups_what_each_worker_recorded_and_marks_dead_ones():
    workers = [
        Worker("transactions-0", TX, frozenset({tp(DETAILS, 0), tp(DETAILS, 1)})),
        Worker("transactions-1", TX, frozenset({tp(DETAILS, 1)}), alive=False),
        Worker("email", EMAIL, frozenset()),
        SimpleNamespace(name="orders"),  # a source: no group, nothing held
    ]
    assert worker_holders(workers) == {
        TX: {tp(DETAILS, 0): ["transactions-0"], tp(DETAILS, 1): ["transactions-0", "transactions-1 (dead)"]},
        EMAIL: {},
    }


def test_partition_html_has_a_heading_per_group_and_a_line_per_row():
    rows = partition_rows(reading(), {TX: {tp(DETAILS, 0): ["transactions-0"]}}, topic_suffix=SUFFIX)
    page = partition_html(rows)
    assert "transactions · order_details · lag 28" in page and "analytics · 2 topics, partitions added up · lag 3" in page
    assert page.count("<tr>") == 1 + len(rows)  # the column heads, then one per row
    assert "transactions-0" in page and ">order_confirmed<" in page and "<td>–</td>" in page
    assert "no lag measured yet" in partition_html([])
    assert "<b>" not in partition_html([PartitionRow("<b>", "t", "0", "<b>", 0, 0, 0)])  # names are escaped


def test_partition_frame_keeps_the_columns_and_missing_commits():
    frame = partition_frame(partition_rows(reading(), {}, topic_suffix=SUFFIX))
    assert list(frame.columns) == ["group", "topic", "partition", "owner", "committed", "end", "lag"]
    assert frame["lag"].sum() == 31 and frame["committed"].isna().sum() == 2
    assert partition_frame([]).empty


def test_lag_growth_is_the_slope_of_each_groups_lag_in_the_window():
    samples = [Sample(100.0 + t, placed=0, confirmed=0, lag={TX: 50 + 200 * t, EMAIL: 7 + (t % 2)}) for t in range(9)]
    growth = lag_growth(samples, since=101.0, until=107.0)
    assert growth.samples == 7 and growth.seconds == 6.0
    assert growth.per_s["transactions"] == 200.0 and abs(growth.per_s["email"]) < 0.5
    assert lag_growth(samples, since=104.0, until=104.5).per_s == {}  # one sample: no slope
    draining = [Sample(float(t), placed=0, confirmed=0, lag={TX: 900 - 100 * t}) for t in range(5)]
    assert lag_growth(draining, 0, 10).per_s == {"transactions": -100.0}


@pytest.mark.parametrize(("mode", "asked", "held"), [("0", 8, 8), ("1", 8, 4.8), ("1", 5, 3.0), ("1", 2, 2)])
def test_lesson_seconds_are_shorter_under_test_mode_but_never_longer(mode, asked, held):
    assert lesson_seconds(asked, {"ORDERLAB_TEST_MODE": mode}) == pytest.approx(held)


# -- the control room over a stand-in Lab ---------------------------------------------------------

@dataclass
class _Snapshot:
    taken_at: float
    placed: int = 0
    confirmed: int = 0
    declined: int = 0
    emails_sent: int = 0
    analytics_orders_seen: int = 0
    dead_lettered: int = 0
    workers: int = 1
    lag: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, Any] = field(default_factory=dict)


class TableLab:
    """What the control room reads for its table: a snapshot with offsets, pools of workers, settings."""

    def __init__(self) -> None:
        from orderlab.services.transactions import PaymentControls

        self.controls = PaymentControls(0.1, 0.0)
        self.rate, self.running, self.worker_count = 0.0, False, 1
        self.settings = SimpleNamespace(topic_suffix=SUFFIX)
        worker = Worker("transactions-0", TX, frozenset({tp(DETAILS, 0), tp(DETAILS, 1), tp(DETAILS, 2)}))
        self.pools = {"transactions": SimpleNamespace(workers=[worker])}
        self.clock = 1000.0

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    def set_decline_probability(self, p: float) -> None:
        pass

    def set_payment_latency_ms(self, ms: float) -> None:
        pass

    def scale_transactions(self, n: int) -> int:
        return n

    def snapshot(self, with_lag: bool = True) -> _Snapshot:
        self.clock += 1.0
        offsets = {TX: reading()[TX]} if with_lag else {}
        return _Snapshot(self.clock, lag=group_lag(offsets), offsets=offsets)

    def revenue_cents(self) -> int:
        return 0

    def email_latencies(self) -> list[tuple[float, float]]:
        return []

    def failures(self) -> dict[str, str]:
        return {}

    def wait_until(self, condition: Any, timeout: float, **kwargs: Any) -> None:
        pass


def test_the_control_room_draws_the_partition_table_with_each_frame_and_resends_it_when_stopped():
    lab = TableLab()
    room = ControlRoom(lab, interval_s=10)
    assert "no lag measured yet" in room.table.value
    sent: list[str] = []
    for widget in room._panel_widgets():
        widget.send_state = lambda key=None, css=widget._dom_classes: sent.append(css[0] if css else "?")
    room.start()
    room.refresher.refresh()
    assert "transactions · order_details · lag 28" in room.table.value and "transactions-0" in room.table.value
    assert room.partition_table()["owner"].tolist() == ["transactions-0"] * 3
    room.stop()
    assert {"orderlab-counters", "orderlab-partitions", "orderlab-chart", "orderlab-measured-rate"} <= set(sent)
    assert ControlRoom(TableLab(), partition_table=False).table is None
