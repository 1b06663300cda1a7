"""The classroom run: the bare pipeline, then lesson 05 in JupyterLab and Chromium, the rate slider stepped up.

What a class sees differs from ``orderlab bench``: JupyterLab, its kernel
and a browser share the machine with the broker, and the kernel runs the
pipeline and draws the charts. So the run measures the bare pipeline first
(:func:`~orderlab.bench.pipeline.run_pipeline`, as ``orderlab bench``
does), then opens lesson 05 in normal mode, runs its first cell (the panel
starts the Lab at 100 orders/s) and moves the rate slider up through the
page, one step at a time, until a step is not held or the slider's top is
reached. A tiny run (``--quick``) goes through all its steps, held or not.

Every part it starts is stopped at the end, also when it fails: the panel's
Stop pressed, the browser closed, the server shut down with its kernel, and
the lesson run's topics, groups and ledger removed.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ...cleanup import RUN_SUFFIX, remove_run
from ...clients import check_broker
from ...limits import MAX_RATE
from ...settings import Settings
from ..cpuclock import machine_busy_s
from ..dashboard import beat_hz
from ..pipeline import run_pipeline
from ..runner import load_average, machine_info, own_topics
from .errors import ClassroomError
from .held import shortfalls
from .kernel import KernelProbe
from .page import LessonPage, wait_for
from .plan import ClassroomPlan
from .procs import ProcessWatch, browser_processes, listening_process, process_tree
from .report import ClassroomReport, StepResult
from .server import LabServer

Say = Callable[[str], None]
FAILED = "failed.png"  # the page when the run failed, beside the steps' screenshots


def _to_stderr(line: str) -> None:
    print(f"classroom: {line}", file=sys.stderr, flush=True)


def _broker_port(settings: Settings) -> int | None:
    """The bootstrap port when the (first) broker is on this machine, else None."""
    host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1") or not port.isdigit():
        return None
    return int(port)


def _rate(before: dict[str, Any], after: dict[str, Any], counter: str) -> float:
    seconds = after["taken_at"] - before["taken_at"]
    return (after[counter] - before[counter]) / seconds if seconds > 0 else math.nan


class _Step:
    """One step: the slider moved, the pipeline left ``settle_s`` to find its pace, then ``window_s`` measured."""

    def __init__(self, plan: ClassroomPlan, page: LessonPage, probe: KernelProbe, watch: ProcessWatch, artifacts: Path) -> None:
        self.plan, self.page, self.probe, self.watch, self.artifacts = plan, page, probe, watch, artifacts

    def run(self, index: int, rate: int) -> StepResult:
        plan, page, probe = self.plan, self.page, self.probe
        page.set_rate(rate)
        wait_for(f"the lab to run at {rate}/s", lambda: probe.reading(time.time())["lab_rate"] == rate, 15, poll_s=0.5)
        time.sleep(plan.settle_s)
        window_start = time.time()
        first = probe.reading(window_start)
        page_clock = page.clock()
        self.watch.start()
        machine_before = machine_busy_s()
        latencies: list[float] = list(first["latency_ms"])
        latest = first["latest_sent"]
        ends = time.monotonic() + plan.window_s
        while (left := ends - time.monotonic()) > 0:
            time.sleep(min(plan.poll_s, left))
            if ends - time.monotonic() > 0.5:  # the last reading comes below, with the lag growth
                reading = probe.reading(latest)
                latencies += reading["latency_ms"]
                latest = reading["latest_sent"]
        last = probe.reading(latest, growth_since=window_start)
        latencies += last["latency_ms"]
        page_seconds = page.clock() - page_clock
        arrived = page.frames_since(page_clock)
        used = self.watch.read()
        machine_after = machine_busy_s()
        shot = page.screenshot(self.artifacts / f"step-{index:02d}-{rate}.png")
        before, after = first["snapshot"], last["snapshot"]
        if before is None or after is None:
            raise ClassroomError("the control room has drawn no frame: its refresher is not running")
        figures = {
            "placed_per_s": _rate(before, after, "placed"),
            "settled_per_s": (_rate(before, after, "confirmed") + _rate(before, after, "declined")),
            "confirmed_per_s": _rate(before, after, "confirmed"),
            "emailed_per_s": _rate(before, after, "emails_sent"),
        }
        growth = {group: float(per_s) for group, per_s in last.get("lag_growth_per_s", {}).items()}
        kernel_seconds = last["now"] - first["now"]
        window_s = after["taken_at"] - before["taken_at"]
        return StepResult(
            rate=rate, window_s=window_s, **figures, lag_growth_per_s=growth,
            latencies_ms=tuple(latencies), chart_frames=len(arrived), chart_hz=_chart_hz(arrived, page_seconds),
            kernel_frames_hz=(last["frames"] - first["frames"]) / kernel_seconds if kernel_seconds > 0 else math.nan,
            processes=used,
            machine_cpu_s=machine_after - machine_before if machine_after is not None and machine_before is not None else None,
            panel_says=last["behind"], screenshot=str(shot),
            shortfalls=shortfalls(rate, lag_growth_per_s=growth, window_s=window_s, **figures),
        )


def _chart_hz(arrived: list[float], seconds: float) -> float:
    """Frames per second from their spacing (as ``orderlab bench`` counts them), but no more than the
    frames that arrived, one added for the window's edges, over the window: charts that stopped
    arriving halfway do not score by the beat of their first half."""
    if seconds <= 0:
        return math.nan
    return min(beat_hz(arrived, seconds), (len(arrived) + 1) / seconds)


def _step_line(step: StepResult) -> str:
    worst = max(step.lag_growth_per_s.values(), default=math.nan)
    verdict = "held" if step.held else f"NOT held: {'; '.join(step.shortfalls)}"
    return (f"{step.rate:,}/s: placed {step.placed_per_s:,.0f}/s, e-mailed {step.emailed_per_s:,.0f}/s, "
            f"worst lag growth {worst:+,.0f}/s, p99 {step.latency(99):,.0f} ms, charts {step.chart_hz:.2f} Hz: {verdict}")


def _remove_lesson_run(settings: Settings, suffix: list[str], notes: list[str]) -> None:
    if not suffix or not RUN_SUFFIX.search(suffix[0]):
        return
    try:
        remove_run(settings.with_(topic_suffix=suffix[0]))
    except Exception as exc:  # noqa: BLE001 - the figures stand; only the clean-up failed
        notes.append(f"could not remove the lesson run {suffix[0]}: {exc} (orderlab clean removes it)")


@contextmanager
def _shot_on_failure(page: LessonPage, path: Path) -> Iterator[None]:
    try:
        yield
    except Exception:
        try:
            page.screenshot(path, panel=False)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise


def _press_stop(page: LessonPage, notes: list[str]) -> None:
    try:
        page.press_stop()
    except Exception as exc:  # noqa: BLE001 - the server's shutdown stops the kernel, and the Lab with it
        notes.append(f"the panel's Stop did not answer: {exc}")


def run_classroom(settings: Settings, plan: ClassroomPlan, artifacts: Path, *, say: Say = _to_stderr,
                  slider_top: int = MAX_RATE) -> ClassroomReport:
    """The whole run; see the module's docstring."""
    check_broker(settings)
    (artifacts / FAILED).unlink(missing_ok=True)  # an earlier run's
    started = time.monotonic()
    machine = {**machine_info(), "load_before": load_average(), "bootstrap_servers": settings.bootstrap_servers}
    say(f"the bare pipeline: {plan.bare_orders:,} orders, as orderlab bench runs it")
    with own_topics(settings.with_(db_url=settings.db_url or "sqlite://"), "bench-pipeline") as pipeline_settings:
        bare = run_pipeline(pipeline_settings, plan.bare_orders, workers=2)
    say(f"the bare pipeline sustained {bare.orders_per_s:,.0f} orders/s")
    rates = plan.rates(bare.orders_per_s, slider_top)
    notes: list[str] = list(bare.notes)
    steps: list[StepResult] = []
    suffix: list[str] = []  # the lesson run's topic suffix, once the kernel has told it
    with ExitStack() as stack:
        stack.callback(_remove_lesson_run, settings, suffix, notes)  # last: after the server and its kernel stopped
        server = stack.enter_context(LabServer(settings.bootstrap_servers))
        say(f"JupyterLab at {server.url}; opening lesson 05 in Chromium")
        page = LessonPage()
        stack.callback(page.close)
        stack.enter_context(_shot_on_failure(page, artifacts / FAILED))
        page.open(server.notebook_url())
        page.run_first_cell()
        stack.callback(_press_stop, page, notes)
        probe = KernelProbe(server.kernel_connection_file())
        stack.callback(probe.close)
        first = probe.reading(time.time())
        suffix.append(first["topic_suffix"])
        broker_port = _broker_port(settings)
        kernel_pid, server_pid = first["pid"], server.process.pid if server.process else None
        broker = listening_process(broker_port) if broker_port is not None else None
        if broker is None:
            notes.append(f"the broker at {settings.bootstrap_servers} is not a process of this machine that can be read: "
                         "its CPU and memory are not measured")
        watch = ProcessWatch({
            # the kernel with its children; the server alone (the kernel is its child); the broker's JVM
            "kernel": process_tree(kernel_pid), "jupyter_server": process_tree(server_pid, children=False),
            "broker": process_tree(broker.pid if broker is not None else None), "browser": browser_processes,
        })
        stepper = _Step(plan, page, probe, watch, artifacts)
        say(f"the panel runs; {plan.warm_s:.0f} s at the lesson's 100 orders/s, then the steps "
            f"{', '.join(f'{rate:,}' for rate in rates)} orders/s, {plan.step_s:.0f} s each")
        time.sleep(plan.warm_s)
        for index, rate in enumerate(rates, 1):
            step = stepper.run(index, rate)
            steps.append(step)
            say(_step_line(step))
            if not step.held and not plan.quick:
                break
    machine["load_after"] = load_average()
    return ClassroomReport(bare=bare, slider_top=slider_top, steps=tuple(steps), machine=machine, plan=plan.as_dict(),
                           elapsed_s=time.monotonic() - started, notes=tuple(notes), lesson_run=suffix[0] if suffix else "")
