"""The notebook ui without Kafka: chart data, PNG rendering, the refresher,
the order form's payload and the control room over a stand-in Lab."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from orderlab.services.transactions import PaymentControls
from orderlab.ui import ControlRoom, OrderForm, Refresher, Sample, dashboard_data, dashboard_png, in_test_mode, order_payload, pick
from orderlab.ui.chartdata import History, latency_percentiles, lag, measured_rate, rates, short_group_name
from orderlab.ui.charts import DashboardChart
from orderlab.ui.forms import FormError
from orderlab.ui.logs import LogBuffer
from orderlab.ui.tables import dead_letters_table, emails_table, lag_table, roles_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def samples(count: int, *, start: float = 1000.0, per_s: int = 100, confirmed_per_s: int = 90) -> list[Sample]:
    return [
        Sample(start + i, placed=i * per_s, confirmed=i * confirmed_per_s, revenue_cents=i * 5_000,
               lag={"orderlab-transactions-lesson05-0000aaaa": i, "orderlab-email-lesson05-0000aaaa": 2 * i})
        for i in range(count)
    ]


# -- chart data --------------------------------------------------------------------------

def test_rates_are_per_second_deltas_indexed_by_seconds_ago():
    frame = rates(samples(5), now=1004.0)
    assert list(frame.index) == [-3.0, -2.0, -1.0, 0.0]
    assert frame["orders in"].tolist() == [100.0] * 4
    assert frame["confirmed"].tolist() == [90.0] * 4
    assert frame["revenue"].tolist() == [50.0] * 4  # 5,000 cents a second


def test_rates_skip_a_counter_reset_and_respect_the_window():
    history = samples(3) + [Sample(1003.0, placed=5, confirmed=0)]  # the lab restarted
    frame = rates(history, now=1003.0)
    assert list(frame.index) == [-2.0, -1.0]  # the step with the reset gives no rate
    assert (frame >= 0).all().all()
    assert len(rates(samples(100), now=1099.0, window_s=10)) == 10


def test_rates_with_uneven_sampling_divide_by_the_real_interval():
    history = [Sample(0.0, 0, 0), Sample(0.5, 100, 50)]
    assert rates(history, now=0.5)["orders in"].tolist() == [200.0]


def test_measured_rate_uses_the_last_seconds_and_follows_a_change():
    history = samples(10)  # 100/s
    assert measured_rate(history) == pytest.approx(100.0)
    faster = history + [Sample(1010.0 + i, placed=900 + 500 * (i + 1), confirmed=0) for i in range(4)]
    assert measured_rate(faster) == pytest.approx(500.0)
    assert measured_rate(history[:1]) == 0.0
    assert measured_rate([]) == 0.0


def test_latency_percentiles_per_second_of_sending():
    now = 100.0
    # second (98, 99]: latencies 10..100 ms; second (99, 100]: 1 s each
    pairs = [(98.5 - ms / 1000.0, 98.5) for ms in range(10, 101, 10)] + [(98.6, 99.6), (98.7, 99.7)]
    frame = latency_percentiles(pairs, now)
    assert list(frame.index) == [-1.0, 0.0]
    assert frame.loc[-1.0, "p50"] == pytest.approx(55.0)
    assert frame.loc[-1.0, "p99"] == pytest.approx(99.1)
    assert frame.loc[0.0, "p50"] == pytest.approx(1000.0)


def test_latency_percentiles_ignore_old_and_future_and_empty():
    assert latency_percentiles([], 100.0).empty
    assert latency_percentiles([(0.0, 1.0), (200.0, 201.0)], 100.0, window_s=30).empty


def test_lag_frame_uses_short_group_names():
    frame = lag(samples(3), now=1002.0)
    assert list(frame.columns) == ["transactions", "email"]
    assert frame["email"].tolist() == [0.0, 2.0, 4.0]
    assert short_group_name("orderlab-analytics-lesson06-12345678") == "analytics"
    assert short_group_name("someone-else") == "someone"


def test_history_is_bounded_and_refuses_time_going_backwards():
    history = History(maxlen=3)
    for sample in samples(5):
        history.append(sample)
    history.append(Sample(1000.0, 0, 0))
    assert [s.at for s in history.samples()] == [1002.0, 1003.0, 1004.0]
    history.clear()
    assert len(history) == 0


def test_dashboard_png_renders_every_panel_even_without_data():
    data = dashboard_data(samples(30), [(1000.0 + i, 1000.2 + i) for i in range(29)], now=1029.0)
    png = dashboard_png(data)
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    empty = dashboard_png(dashboard_data([], [], now=0.0))
    assert empty.startswith(PNG_MAGIC)
    assert empty != png


def with_lag(history: list[Sample], lag: dict[str, int]) -> list[Sample]:
    return [Sample(s.at, s.placed, s.confirmed, revenue_cents=s.revenue_cents, lag=lag) for s in history]


def test_dashboard_chart_redraws_with_new_data_and_matches_a_fresh_chart():
    chart = DashboardChart()
    first = dashboard_data(samples(10), [], now=1009.0)
    later = dashboard_data(samples(30, per_s=300), [(1000.0 + i, 1000.2 + i) for i in range(29)], now=1029.0)
    one, two = chart.render(first), chart.render(later)
    assert one.startswith(PNG_MAGIC) and two.startswith(PNG_MAGIC) and one != two
    assert two == DashboardChart().render(later)  # nothing of the first frame is left over
    assert chart.render(first) == one


def test_dashboard_chart_follows_the_data_in_titles_and_y_limits():
    chart = DashboardChart()
    chart.render(dashboard_data(samples(10, per_s=300), [], now=1009.0))
    assert chart.orders.title.get_text() == "orders per second (measured 300/s)"
    low, high = chart.orders.axes.get_ylim()
    assert low == 0 and 300 < high < 400
    chart.render(dashboard_data(samples(10, per_s=1000), [], now=1009.0))
    assert chart.orders.title.get_text() == "orders per second (measured 1,000/s)"
    assert 1000 < chart.orders.axes.get_ylim()[1] < 1200
    assert chart.revenue.axes.get_ylim() == (0.0, 52.5)  # 50 EUR a second, and a little room above


def test_dashboard_chart_draws_the_orders_title_in_the_picture_beside_the_revenue_title():
    chart = DashboardChart()
    chart.render(dashboard_data(samples(10), [], now=1009.0))
    renderer = chart._canvas.get_renderer()
    orders, revenue = (panel.title.get_window_extent(renderer) for panel in (chart.orders, chart.revenue))
    assert chart.figure.bbox.contains(orders.x0, orders.y0) and chart.figure.bbox.contains(orders.x1, orders.y1)
    assert orders.y0 == revenue.y0  # the same row: the title hidden for the background must not be placed apart


def test_dashboard_chart_gives_a_group_that_appears_later_a_line_and_a_legend_entry():
    chart = DashboardChart()
    early = with_lag(samples(5), {"orderlab-transactions-x": 7})
    chart.render(dashboard_data(early, [], now=1004.0))
    assert list(chart.lag.lines) == ["transactions"] and chart.lag.axes.get_legend() is None  # one line: no legend
    both = early + with_lag(samples(5, start=1005.0), {"orderlab-transactions-x": 7, "orderlab-email-x": 40})
    frame = chart.render(dashboard_data(both, [], now=1009.0))
    assert list(chart.lag.lines) == ["transactions", "email"]
    email = chart.lag.lines["email"]
    assert email.get_visible() and list(email.get_ydata()[5:]) == [40.0] * 5
    assert all(math.isnan(y) for y in email.get_ydata()[:5])  # not measured yet: a gap, not a zero
    assert [text.get_text() for text in chart.lag.axes.get_legend().get_texts()] == ["transactions", "email"]
    assert chart.lag.axes.get_ylim()[1] > 40
    assert frame == DashboardChart().render(dashboard_data(both, [], now=1009.0))


def test_dashboard_chart_empty_notes_show_and_hide():
    chart = DashboardChart()
    panels = (chart.orders, chart.revenue, chart.latency, chart.lag)
    chart.render(dashboard_data([], [], now=0.0))
    assert [panel.note.get_visible() for panel in panels] == [True] * 4
    assert chart.lag.note.get_text() == "no lag measured yet"
    chart.render(dashboard_data(samples(5), [], now=1004.0))
    assert [panel.note.get_visible() for panel in panels] == [False, False, True, False]
    chart.render(dashboard_data(samples(5), [(1003.0, 1003.5)], now=1004.0))
    assert not chart.latency.note.get_visible()
    chart.render(dashboard_data([], [], now=2000.0))
    assert [panel.note.get_visible() for panel in panels] == [True] * 4
    assert not any(line.get_visible() for line in chart.lag.lines.values())


# -- test mode ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)])
def test_test_mode_variable(value, expected):
    assert in_test_mode({"ORDERLAB_TEST_MODE": value}) is expected
    assert pick(10, 2, {"ORDERLAB_TEST_MODE": value}) == (2 if expected else 10)


# -- refresher ------------------------------------------------------------------------------

def test_refresher_ticks_about_every_interval_and_stops_at_once():
    ticked = threading.Event()
    calls: list[float] = []

    def work() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            ticked.set()

    refresher = Refresher(work, interval_s=0.05)
    assert refresher.start() is refresher.start()  # idempotent
    assert ticked.wait(5)
    started = time.monotonic()
    assert refresher.stop()
    assert time.monotonic() - started < 1.0
    assert not refresher.running
    count = len(calls)
    time.sleep(0.15)
    assert len(calls) == count  # nothing after stop
    assert refresher.stop()  # idempotent
    refresher.start()  # and it can start again
    assert refresher.running
    refresher.stop()


def test_refresher_reports_errors_and_keeps_going():
    errors: list[BaseException] = []
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first frame failed")

    refresher = Refresher(flaky, interval_s=1.0, on_error=errors.append)
    assert refresher.refresh() is False
    assert refresher.refresh() is True
    assert [str(e) for e in errors] == ["first frame failed"]
    assert (refresher.ticks, refresher.errors) == (1, 1)
    with pytest.raises(ValueError):
        Refresher(flaky, interval_s=0)


def test_log_buffer_keeps_the_last_lines_only():
    import logging

    buffer = LogBuffer(capacity=2)
    logger = logging.getLogger("orderlab.test.ui")
    logger.addHandler(buffer)
    try:
        for n in range(3):
            logger.warning("line %d\nsecond line", n)
    finally:
        logger.removeHandler(buffer)
    assert [line.split(": ", 1)[1] for line in buffer.lines()] == ["line 1", "line 2"]
    noisy = logging.getLogger("kafka.test.ui")
    noisy.setLevel(logging.WARNING)  # an `orderlab` CLI run in this process may have silenced "kafka"
    noisy.addHandler(buffer)
    try:
        noisy.warning("a slow task")
        assert buffer.last().endswith("a slow task")
        assert buffer.last(notable_only=True).endswith("line 2")  # a library's warning is not news
        noisy.error("connection refused")
        assert buffer.last(notable_only=True).endswith("connection refused")
    finally:
        noisy.removeHandler(buffer)


# -- the order form -------------------------------------------------------------------------

def test_order_payload_prices_from_the_catalogue():
    payload = order_payload(["KB-001", "CB-007"], 2, "ada@example.com", order_id="o-1", created_at=5.0)
    assert payload["total_cents"] == 2 * 8_999 + 2 * 1_299
    assert [item["name"] for item in payload["items"]] == ["Mechanical keyboard", "USB-C cable"]
    assert payload["order_id"] == "o-1" and payload["created_at"] == 5.0
    with pytest.raises(FormError, match="unknown SKU 'XX-999'"):
        order_payload(["XX-999"], 1, "ada@example.com")


@dataclass
class _Placed:
    accepted: bool
    order_id: str | None
    reason: str = ""


class StandInLab:
    """The part of the Lab the ui uses, with no Kafka behind it."""

    def __init__(self, *, fail_start: str = "") -> None:
        self.controls = PaymentControls(0.1, 0.0)
        self.rate = 0.0
        self.running = False
        self.worker_count = 2
        self.placed = 0
        self.confirmed = 0
        self.fail_start = fail_start
        self.calls: list[tuple[str, Any]] = []
        self.broker_lost: dict[str, float] = {}  # worker -> since, as roles that lost the broker report it

    def start(self) -> None:
        if self.fail_start:
            raise ConnectionError(self.fail_start + "\nsecond line of detail")
        self.running = True

    def stop(self) -> None:
        self.running = False

    def set_rate(self, rate: float) -> None:
        if not self.running:
            raise RuntimeError("the lab is not running: call lab.start() first")
        self.rate = rate
        self.calls.append(("rate", rate))

    def set_decline_probability(self, p: float) -> None:
        self.controls.set_decline_probability(p)
        self.calls.append(("decline", p))

    def set_payment_latency_ms(self, ms: float) -> None:
        self.controls.latency_ms = ms
        self.calls.append(("latency", ms))

    def scale_transactions(self, n: int) -> int:
        if not 1 <= n <= 4:
            raise ValueError(f"transactions workers must be between 1 and 4, got {n}")
        self.worker_count = n
        self.calls.append(("workers", n))
        return n

    def snapshot(self, with_lag: bool = True) -> Any:
        self.placed += int(self.rate)
        self.confirmed += int(self.rate * 0.9)
        return _Snapshot(time.time(), self.placed, self.confirmed, lag={"orderlab-email-x": 3} if with_lag else {},
                         broker_lost=dict(self.broker_lost))

    def revenue_cents(self) -> int:
        return self.placed * 1000

    def email_latencies(self) -> list[tuple[float, float]]:
        now = time.time()
        return [(now - 0.3, now - 0.1)]

    def failures(self) -> dict[str, str]:
        return {}

    def wait_until(self, condition: Any, timeout: float, **kwargs: Any) -> Any:
        time.sleep(min(timeout, 0.01))

    def place(self, payload: dict[str, Any]) -> _Placed:
        if not payload["customer_email"].endswith("@example.com"):
            return _Placed(False, payload["order_id"], "customer_email must be at a reserved demo domain")
        return _Placed(True, payload["order_id"])


@dataclass
class _Snapshot:
    taken_at: float
    placed: int
    confirmed: int
    declined: int = 0
    emails_sent: int = 0
    analytics_orders_seen: int = 0
    dead_lettered: int = 0
    workers: int = 2
    lag: dict[str, int] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    broker_lost: dict[str, float] = field(default_factory=dict)

    @property
    def broker_unreachable_since(self) -> float | None:
        return min(self.broker_lost.values()) if self.broker_lost else None


def test_control_room_start_applies_the_sliders_and_draws():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=10)  # the test draws frames itself
    room.rate.value = 300
    room.decline.value = 0.25
    assert lab.calls == [("decline", 0.25)]  # the rate waits for the lab to run
    try:
        assert room.start() is True
        assert lab.running and lab.rate == 300
        assert lab.controls.rules.decline_probability == 0.25
        assert room.status.value.startswith("running")
        room.refresher.refresh()
        time.sleep(0.02)
        room.refresher.refresh()
        assert bytes(room.chart.value).startswith(PNG_MAGIC)
        assert room.measured.value.startswith("measured: ") and room.measured.value != "measured: 0 orders/s"
        assert "placed" in room.counters.value
    finally:
        room.stop()
    assert not lab.running and not room.refresher.running
    assert room.status.value.startswith("stopped")


def test_control_room_says_since_when_the_broker_is_unreachable_and_clears_it_when_back():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=10)
    assert room.start() is True
    since = time.mktime((2026, 12, 1, 14, 3, 7, 0, 0, -1))
    lab.broker_lost = {"transactions-0": since + 1.5, "orders": since}
    room.refresh_once()
    assert room.status.value == "broker unreachable since 14:03:07 (orders, transactions-0)"
    room.refresh_once()
    assert room.status.value.startswith("broker unreachable since 14:03:07")
    lab.broker_lost = {}
    room.refresh_once()
    assert room.status.value == "broker reachable again"
    room.stop()


def test_control_room_sliders_drive_the_lab_and_bad_values_are_one_line():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=10)
    try:
        room.start()
        room.rate.value = 1500
        room.latency.value = 40
        room.workers.value = 3
        assert ("rate", 1500) in lab.calls and ("latency", 40) in lab.calls and ("workers", 3) in lab.calls
        room.workers.value = 6  # the stand-in refuses more than 4
        assert room.status.value == "could not set workers to 6: transactions workers must be between 1 and 4, got 6"
        assert lab.worker_count == 3
    finally:
        room.stop()


def test_control_room_start_failure_is_shown_not_raised():
    room = ControlRoom(StandInLab(fail_start="no Kafka broker answers at 127.0.0.1:1"))
    assert room.start() is False
    assert room.status.value == "could not start: no Kafka broker answers at 127.0.0.1:1"
    assert not room.refresher.running


def test_control_room_buttons_start_and_stop():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=10)
    room.start_button.click()
    assert lab.running and room.refresher.running
    room.stop_button.click()
    assert not lab.running and not room.refresher.running


def test_control_room_live_refresh_changes_the_chart():
    lab = StandInLab()
    room = ControlRoom(lab, interval_s=0.05)
    try:
        room.start()
        room.rate.value = 100
        deadline = time.monotonic() + 10
        while room.frames < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = room.chart.value
        room.rate.value = 800
        while room.chart.value == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert room.chart.value != first
    finally:
        room.stop()


def test_order_form_places_and_explains_refusals():
    lab = StandInLab()
    form = OrderForm(lab)
    form.items.value = ("KB-001", "MS-002")
    form.quantity.value = 2
    outcome = form.place()
    assert outcome.accepted and outcome.order_id.startswith("web-0001-")
    assert form.result.value == f"placed {outcome.order_id}: 229.96 EUR"
    form.email.value = "me@gmail.com"
    form.place_button.click()
    assert form.result.value.startswith("refused (sent to the dead-letter topic): customer_email must be")
    form.items.value = ()
    assert form.place() is None and form.result.value == "not placed: pick at least one item"


# -- tables ---------------------------------------------------------------------------------

def test_tables_are_sorted_and_shaped():
    snapshot = _Snapshot(0.0, 3, 2, roles={
        "orders": {"name": "orders", "state": "running", "error": None, "placed": 3},
        "email": {"name": "email", "state": "running", "error": None, "sent": 2},
    })
    roles = roles_table(snapshot)
    assert roles.loc["orders", "placed"] == 3 and roles.loc["orders", "sent"] == 0
    assert list(roles.columns)[0] == "state"
    assert lag_table({"orderlab-email-x": 4, "orderlab-analytics-x": 0}).index.tolist() == ["analytics", "email"]

    @dataclass
    class Mail:
        order_id: str
        to: str
        subject: str
        latency_s: float | None

    mails = emails_table([Mail("b", "b@example.com", "s", 0.25), Mail("a", "a@example.com", "s", None)])
    assert mails["order_id"].tolist() == ["a", "b"]
    assert mails["latency_ms"].tolist()[1] == 250.0 and math.isnan(mails["latency_ms"].tolist()[0])

    @dataclass
    class Letter:
        source_topic: str
        role: str
        reason: str
        key: bytes | None
        value: bytes | None

    letters = dead_letters_table([Letter("t", "orders", "bad", b"k2", b"{}"), Letter("t", "orders", "worse", b"k1", None)])
    assert letters["key"].tolist() == ["k1", "k2"] and letters["value"].tolist() == ["", "{}"]
    assert isinstance(letters, pd.DataFrame)


def test_saved_notebooks_show_a_sentence_where_widgets_are_not_live():
    room = ControlRoom(StandInLab())
    bundle = room._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Control room:")
    assert OrderForm(StandInLab())._repr_mimebundle_()["text/plain"].startswith("Order form:")


def test_the_e_mail_role_keeps_a_whole_latency_window_at_the_sliders_top():
    """The latency panel draws the control room's window; at the top rate the role must keep that many e-mails."""
    import inspect

    from orderlab.limits import MAX_RATE
    from orderlab.services.email import LATENCY_HISTORY
    from orderlab.ui import ControlRoom

    window_s = inspect.signature(ControlRoom.__init__).parameters["window_s"].default
    assert LATENCY_HISTORY >= window_s * MAX_RATE
