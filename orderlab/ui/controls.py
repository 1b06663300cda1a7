"""The control room: sliders and buttons that drive a Lab, and live charts.

The ui talks only to the :class:`~orderlab.lab.Lab` (never to Kafka). A
:class:`~orderlab.ui.refresher.Refresher` thread samples the lab about once
a second, has the charts drawn to PNG with the Agg canvas (in a helper
process, :mod:`orderlab.ui.chart_process`) and assigns the bytes to an
``ipywidgets.Image``, and redraws the partition table beside
them from the same sample (:mod:`orderlab.ui.partitions`); widget
assignments are thread-safe messages to the front end, so nothing is ever
printed into a cell.
Slider and button handlers catch every error and show it as one line in the
panel: a student moving a slider never gets a traceback.

When a setting cannot be held the panel says so in words, under the
measured rate: which group falls behind and by how much, from the lag growth
of the last seconds (:mod:`orderlab.ui.bottleneck`), and the highest rate
this machine held in its last ``orderlab bench --classroom`` run, when one
was saved (:mod:`orderlab.held_rate`).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import ipywidgets as widgets

from ..held_rate import held_line, load_held_rate
from ..limits import MAX_RATE, MAX_WORKERS
from .bottleneck import behind_line
from .chartdata import History, Sample, dashboard_data, measured_rate
from .chart_process import ChartProcess
from .laggrowth import LagGrowth, lag_growth
from .logs import capture_logs
from .mode import lesson_seconds
from .partitions import PartitionRow, lab_holders, partition_frame, partition_html, partition_rows
from .refresher import Refresher
from .tables import counts_line, outage_line

MAX_LATENCY_MS = 500
# The "falls behind" sentence judges the last JUDGED_S seconds of samples, and
# none of the first SETTLE_S after a knob moved: a new rate, a latency or a
# rebalance make the lag jump for a moment without anything falling behind.
JUDGED_S = 20.0
SETTLE_S = 5.0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ControlRoom:
    """``room = ControlRoom(lab); room.start(); room`` shows the panel and starts everything.

    Sliders: order rate, decline probability, payment latency, transactions
    workers. Buttons: Start (starts the lab if needed and applies the
    sliders) and Stop (stops every role). The measured order rate is a label
    of its own, so a person or a browser test can read it. Beside the charts,
    the partition table (``partition_table=False`` leaves it out).
    """

    def __init__(
        self,
        lab: Any,
        *,
        interval_s: float = 1.0,
        window_s: float = 60.0,
        max_rate: int = MAX_RATE,
        max_workers: int = MAX_WORKERS,
        chart_size: tuple[float, float] = (10.0, 6.0),
        partition_table: bool = True,
    ) -> None:
        self.lab = lab
        self.window_s = window_s
        self.chart_size = chart_size
        self.dashboard = ChartProcess(chart_size)  # a chart built once and redrawn every frame, in a helper process
        self.history = History(maxlen=max(120, int(window_s / interval_s) * 4))
        self.logs = capture_logs()
        self.refresher = Refresher(self.refresh_once, interval_s, on_error=self._refresh_failed, name="orderlab-control-room")
        self.frames = 0
        self.last_png = b""
        self.last_snapshot: Any = None
        self.last_rows: list[PartitionRow] = []
        self._last_holders: dict[str, Any] = {}
        self._shown_log = self.logs.last(notable_only=True)  # only news after the panel appeared
        self.outage = ""  # "broker unreachable since ..." while a role has lost the broker (see outage_line)
        self._judge_from = 0.0  # unix time: the "falls behind" sentence uses no sample before it

        slider_style = {"description_width": "150px"}
        wide = widgets.Layout(width="470px")
        self.rate = widgets.IntSlider(
            value=min(int(lab.rate), max_rate), min=0, max=max_rate, step=10, description="order rate (/s)",
            continuous_update=False, style=slider_style, layout=wide,
        )
        self.decline = widgets.FloatSlider(
            value=lab.controls.rules.decline_probability, min=0.0, max=1.0, step=0.01, description="decline probability",
            readout_format=".2f", continuous_update=False, style=slider_style, layout=wide,
        )
        self.latency = widgets.IntSlider(
            value=min(int(lab.controls.latency_ms), MAX_LATENCY_MS), min=0, max=MAX_LATENCY_MS, step=5,
            description="payment latency (ms)", continuous_update=False, style=slider_style, layout=wide,
        )
        self.workers = widgets.IntSlider(
            value=min(max(1, lab.worker_count), max_workers), min=1, max=max_workers, description="transactions workers",
            continuous_update=False, style=slider_style, layout=wide,
        )
        self.start_button = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.status = widgets.Label(value="stopped: press Start")
        self.measured = widgets.Label(value="measured: 0 orders/s")
        self.counters = widgets.Label(value="")
        self.behind = widgets.Label(value="")  # "e-mail falls behind by 900/s: its lag grows"
        self.held = widgets.Label(value=held_line(load_held_rate()))  # the last classroom run's held rate, if any
        # the chart at its drawn size (smaller in a narrow page), the table beside it when the page is wide
        # enough (about 1,150 px: JupyterLab with its file browser closed, or the dashboard), under it when not
        self.chart = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", flex="0 1 auto"))
        self.table = widgets.HTML(value=partition_html([]), layout=widgets.Layout(margin="0 0 0 8px")) if partition_table else None

        for widget, css in (
            (self.rate, "orderlab-rate"), (self.decline, "orderlab-decline"), (self.latency, "orderlab-latency"),
            (self.workers, "orderlab-workers"), (self.start_button, "orderlab-start"), (self.stop_button, "orderlab-stop"),
            (self.status, "orderlab-status"), (self.measured, "orderlab-measured-rate"), (self.counters, "orderlab-counters"),
            (self.behind, "orderlab-behind"), (self.held, "orderlab-held"),
            (self.chart, "orderlab-chart"), *(((self.table, "orderlab-partitions"),) if self.table is not None else ()),
        ):
            widget.add_class(css)

        self.rate.observe(lambda change: self._apply("order rate", self._set_rate, change["new"]), names="value")
        self.decline.observe(lambda change: self._apply("decline probability", lab.set_decline_probability, change["new"]), names="value")
        self.latency.observe(lambda change: self._apply("payment latency", lab.set_payment_latency_ms, change["new"]), names="value")
        for knob in (self.rate, self.latency, self.workers):  # each makes the lag jump for a moment
            knob.observe(lambda _change: self._settle(), names="value")
        self.workers.observe(lambda change: self._apply("workers", self._scale, change["new"]), names="value")
        self.start_button.on_click(lambda _button: self.start())
        self.stop_button.on_click(lambda _button: self.stop())

        self.widget = widgets.VBox([
            widgets.HBox([self.start_button, self.stop_button, self.status]),
            widgets.HBox([widgets.VBox([self.rate, self.latency]), widgets.VBox([self.decline, self.workers])]),
            # the counters take a line of their own: beside the measured rate, both were cut off at 1400 px
            widgets.HBox([self.measured, self.held], layout=widgets.Layout(justify_content="space-between", width="940px")),
            widgets.HBox([self.counters], layout=widgets.Layout(width="940px")),
            widgets.HBox([self.behind], layout=widgets.Layout(width="940px")),
            widgets.HBox(
                [self.chart, *([self.table] if self.table is not None else [])],
                layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
            ),
        ])
        self.widget.add_class("orderlab-control-room")

    # -- display -------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # what a saved notebook shows where widgets are not live (GitHub, a closed kernel)
        bundle["text/plain"] = "Control room: sliders, Start/Stop buttons and live charts (run the notebook to use it)"
        return bundle

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self.lab.running) and self.refresher.running

    def start(self) -> bool:
        """Start the lab (if it is not running), apply every slider, start the live charts.

        Returns False (and says why in the panel) when the lab could not start.
        """
        try:
            if not self.lab.running:
                self.status.value = "starting the four roles..."
                self.lab.start()
                self.history.clear()  # counters start again from zero
                self._settle()
            self.lab.set_decline_probability(self.decline.value)
            self.lab.set_payment_latency_ms(self.latency.value)
            if self.lab.worker_count != self.workers.value:
                self.lab.scale_transactions(self.workers.value)
            self.lab.set_rate(self.rate.value)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not raised into the cell
            self.status.value = f"could not start: {_one_line(exc)}"
            return False
        self.dashboard.start()
        self.refresher.start()
        self.status.value = f"running: orders, {self.lab.worker_count} transactions workers, e-mail, analytics"
        return True

    def stop(self) -> None:
        """Stop the live charts and every role; draw a last frame. Idempotent.

        Then every widget of the panel sends its whole state again, from the
        caller's thread: a notebook saved after this shows the last frame's
        figures, all from one sample. (``nbconvert --execute`` keeps the
        widget messages that arrive while a cell runs, not those the
        refresher thread sends in between, and a value set again unchanged
        sends nothing.)
        """
        self.refresher.stop()
        if self.lab.running:
            self.refresher.refresh()  # the last frame, with the counters of the running roles
        self.dashboard.close()  # a later frame (png(), a restart) starts the chart process again
        try:
            self.lab.stop()
        except Exception as exc:  # noqa: BLE001
            self.status.value = f"error while stopping: {_one_line(exc)}"
        else:
            self.status.value = "stopped: press Start to run again"
        for widget in self._panel_widgets():
            widget.send_state()

    def _panel_widgets(self) -> list[Any]:
        return [self.rate, self.decline, self.latency, self.workers, self.status, self.measured, self.counters,
                self.behind, self.held, self.chart, *([self.table] if self.table is not None else [])]

    # -- knobs ---------------------------------------------------------------------
    def _settle(self) -> None:
        """The "falls behind" sentence ignores the next :data:`SETTLE_S` seconds: a knob just moved."""
        self._judge_from = time.time() + SETTLE_S

    def _set_rate(self, value: int) -> None:
        if self.lab.running:
            self.lab.set_rate(value)

    def _scale(self, value: int) -> None:
        if self.lab.running:
            self.lab.scale_transactions(value)

    def _apply(self, what: str, action: Callable[[Any], Any], value: Any) -> None:
        try:
            action(value)
        except Exception as exc:  # noqa: BLE001 - a bad value is one line in the panel
            self.status.value = f"could not set {what} to {value}: {_one_line(exc)}"
            return
        if self.lab.running:
            self.status.value = f"{what} set to {value}"

    def hold(self, seconds: float) -> None:
        """Let the lab run for ``seconds`` (a lesson's scripted pause; the charts keep refreshing).

        Under test mode the pause is shorter (:func:`~orderlab.ui.mode.lesson_seconds`).
        Raises at once if a role fails meanwhile, rather than waiting out the time.
        """
        if self.lab.running:
            self.lab.wait_until(lambda _snapshot: False, lesson_seconds(seconds), poll_s=0.25)

    def watch(self, seconds: float) -> LagGrowth:
        """:meth:`hold` for ``seconds``, and how fast each group's lag grew meanwhile (records/s).

        Measured from the charts' samples; a frame is drawn at the start and
        at the end, so there are at least two.
        """
        since = time.time()
        self.refresher.refresh()
        self.hold(seconds)
        self.refresher.refresh()
        return lag_growth(self.history.samples(), since, time.time())

    # -- one frame -----------------------------------------------------------------
    def sample(self) -> Sample:
        snapshot = self.lab.snapshot(with_lag=self.lab.running)
        self.last_snapshot = snapshot
        # who holds what, read right after the offsets: the table's two halves from one moment
        self._last_holders = lab_holders(self.lab) if self.table is not None else {}
        sample = Sample(
            at=snapshot.taken_at,
            placed=snapshot.placed,
            confirmed=snapshot.confirmed,
            declined=snapshot.declined,
            emails_sent=snapshot.emails_sent,
            revenue_cents=self.lab.revenue_cents(),
            lag=dict(snapshot.lag),
        )
        self.history.append(sample)
        self.counters.value = counts_line(snapshot)
        self.outage = outage_line(snapshot)
        return sample

    def refresh_once(self) -> None:
        """Sample the lab, redraw the charts, update the labels (the refresher's work)."""
        sample = self.sample()
        data = dashboard_data(self.history.samples(), self.lab.email_latencies(), now=sample.at, window_s=self.window_s)
        png = self.dashboard.render(data)
        self.chart.value = png
        self.last_png = png
        if self.table is not None:
            settings = getattr(self.lab, "settings", None)
            self.last_rows = partition_rows(getattr(self.last_snapshot, "offsets", None) or {}, self._last_holders,
                                            topic_suffix=getattr(settings, "topic_suffix", ""))
            self.table.value = partition_html(self.last_rows)
        self.frames += 1
        self.measured.value = f"measured: {data.measured_rate:,.0f} orders/s"
        self.behind.value = self.behind_now(sample.at) if self.lab.running else ""
        failures = self.lab.failures() if self.lab.running else {}
        latest = self.logs.last(notable_only=True)
        if failures:
            self.status.value = "; ".join(f"{name} failed: {_one_line_text(error)}" for name, error in failures.items())
        elif self.outage:
            self.status.value = self.outage
            self._shown_log = latest  # the roles' "lost the broker" warnings say the same
        elif self.status.value.startswith("broker unreachable"):
            self.status.value = "broker reachable again"
        elif latest and latest != self._shown_log:
            self._shown_log = latest
            self.status.value = f"log: {latest}"

    def measured_rate(self) -> float:
        return measured_rate(self.history.samples())

    def behind_now(self, now: float) -> str:
        """Who falls behind at the lab's rate, judged on the last :data:`JUDGED_S` seconds of samples
        (none from the first :data:`SETTLE_S` after a knob moved); see :func:`~orderlab.ui.bottleneck.behind_line`."""
        since = max(now - JUDGED_S, self._judge_from)
        inside = [s for s in self.history.samples() if since <= s.at <= now]
        if len(inside) < 2:
            return ""
        seconds = inside[-1].at - inside[0].at
        placed_per_s = (inside[-1].placed - inside[0].placed) / seconds if seconds > 0 else None
        growth = lag_growth(inside, since, now)
        return behind_line(growth.per_s, float(self.lab.rate), placed_per_s=placed_per_s, seconds=seconds)

    def _refresh_failed(self, exc: BaseException) -> None:
        self.status.value = f"chart refresh failed: {_one_line(exc)}"

    def partition_table(self) -> Any:
        """The latest frame's partition table as a DataFrame (a frame is drawn now if there is none yet)."""
        if not self.frames:
            self.refresher.refresh()
        return partition_frame(self.last_rows)

    def png(self) -> bytes:
        """The latest chart as PNG bytes (drawn now if there is none yet)."""
        if not self.last_png:
            self.refresher.refresh()
        return self.last_png


def _one_line_text(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text
