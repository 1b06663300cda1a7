"""A broker restart under a running Lab, watched from outside (lesson 07).

:class:`RestartWatch` stops a broker the lesson may stop (a
:class:`~orderlab.lessons.SpareBroker`'s, never the class's shared one),
lets orders flow while it is away, starts it again on the same data and
port, and meanwhile samples the Lab twice a second: orders placed and
waiting in the producer, outcomes, e-mails, and each consumer group's lag.
The lag is read from the broker (it keeps the committed offsets and the
ends of the partitions), so while it is away there is no lag to read: those
samples have none. Each role's outage lines (``orderlab.services.outage``:
one warning when it lost the broker, one line when it is back, with the
time away) are collected too, per worker, for :meth:`RestartWatch.outages`.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .lag import LagMeter
from .settings import parse_bootstrap
from .ui.logs import capture_logs
from .ui.mode import in_test_mode

SAMPLE_EVERY_S = 0.5
STOP_TIMEOUT_S = 60.0
START_TIMEOUT_S = 120.0
OUTAGE_LOGGER = "orderlab.services.outage"
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Sample:
    """The Lab at one moment of the watch."""

    at: float  # unix seconds
    placed: int
    waiting: int  # orders placed that the broker has not acknowledged yet (in the producer's buffer)
    settled: int
    emailed: int
    broker_lost: int  # running workers that count the broker as lost


@dataclass(frozen=True)
class OutageLine:
    """One line of ``orderlab.services.outage``: a worker lost the broker, or has it back."""

    at: float
    worker: str
    back: bool
    away_s: float | None  # for a "back" line: the time away it reports
    why: str  # for a "lost" line: the symptom


class _OutageLines(logging.Handler):
    """Collects the outage logger's lost/back lines as :class:`OutageLine` (from the records, not their text)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[OutageLine] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) < 2:
            return
        back = "back after" in str(record.msg)
        line = OutageLine(record.created, str(args[0]), back, float(args[1]) if back else None,
                          "" if back else str(args[1]))
        with self._lock:
            self.lines.append(line)

    def copy(self) -> list[OutageLine]:
        with self._lock:
            return list(self.lines)


def _answers(bootstrap_servers: str) -> bool:
    """Whether the broker's port accepts a TCP connection now (quick: never waits for a Kafka timeout)."""
    for host, port in parse_bootstrap(bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            continue
    return False


class RestartWatch:
    """Stop and start ``broker`` under the running ``lab``, sampling the lab meanwhile (see the module docstring).

    ``start()`` begins the sampling; :meth:`stop_broker`, :meth:`hold` and
    :meth:`start_broker` are the lesson's steps; :meth:`close` ends the
    sampling (``with`` does both).
    """

    def __init__(self, lab: Any, broker: Any, *, every_s: float = SAMPLE_EVERY_S) -> None:
        self.lab = lab
        self.broker = broker
        self.every_s = every_s
        self.marks: dict[str, float] = {}  # "stopping", "stopped", "starting", "answers", "back": unix times
        self._samples: list[Sample] = []
        self._lags: list[tuple[float, dict[str, int] | None]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lines = _OutageLines()
        self.workers: tuple[str, ...] = ()  # the lab's running workers when the broker was stopped

    # -- sampling ------------------------------------------------------------------
    def start(self) -> "RestartWatch":
        """Begin sampling (counters, and the lag whenever the broker answers). Idempotent."""
        if self._threads:
            return self
        capture_logs()  # the roles' lines go to the lesson's buffer, not into cells
        logging.getLogger(OUTAGE_LOGGER).addHandler(self._lines)
        for target, name in ((self._sample_counters, "counters"), (self._sample_lag, "lag")):
            thread = threading.Thread(target=target, name=f"orderlab-restart-watch-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _sample_counters(self) -> None:
        while not self._done.wait(self.every_s):
            snapshot = self.lab.snapshot(with_lag=False)
            waiting = snapshot.roles.get("orders", {}).get("unacknowledged", 0)
            sample = Sample(snapshot.taken_at, snapshot.placed, waiting, snapshot.settled, snapshot.emails_sent,
                            len(snapshot.broker_lost))
            with self._lock:
                self._samples.append(sample)

    def _sample_lag(self) -> None:
        meter: LagMeter | None = None
        groups = self.lab.topology.lag_groups(self.lab.settings)
        try:
            while not self._done.wait(self.every_s):
                reading: dict[str, int] | None = None
                if _answers(self.lab.settings.bootstrap_servers):
                    try:
                        meter = meter or LagMeter(self.lab.settings)
                        reading = meter.lag(groups)
                    except Exception:  # noqa: BLE001 - the broker going or coming: no reading this time
                        if meter is not None:
                            meter.close()
                        meter = None
                with self._lock:
                    self._lags.append((time.time(), reading))
        finally:
            if meter is not None:
                meter.close()

    def close(self) -> None:
        """End the sampling (the samples are kept). Idempotent."""
        self._done.set()
        for thread in self._threads:
            thread.join(35)  # a lag reading in flight ends within its clients' timeouts
        logging.getLogger(OUTAGE_LOGGER).removeHandler(self._lines)

    def __enter__(self) -> "RestartWatch":
        return self.start()

    def __exit__(self, *_exc_info: Any) -> None:
        self.close()

    # -- the steps -------------------------------------------------------------------
    def _running(self) -> set[str]:
        return set(self.lab.snapshot(with_lag=False).roles)

    def stop_broker(self, timeout_s: float = STOP_TIMEOUT_S) -> float:
        """Stop the broker (SIGTERM: it shuts down cleanly), then wait (bounded) until every worker says it lost it.

        Returns how long the broker took to stop, in seconds.
        """
        self.start()
        self.marks["stopping"] = time.time()
        self.broker.stop(timeout=30)
        self.marks["stopped"] = time.time()
        workers = self._running()
        self.workers = tuple(sorted(workers))
        self.lab.wait_until(lambda s: set(s.broker_lost) >= workers, timeout_s)
        self.marks["noticed"] = time.time()
        return self.marks["stopped"] - self.marks["stopping"]

    def hold(self, seconds: float) -> int:
        """Let the lab run ``seconds`` more (half as long under test mode), sampled; returns the orders waiting in
        the producer then (while the broker is away: all those placed since it stopped)."""
        self.lab.wait_until(lambda _s: False, seconds / 2 if in_test_mode() else seconds)
        return self.lab.snapshot(with_lag=False).roles.get("orders", {}).get("unacknowledged", 0)

    def start_broker(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Start the broker again (same data, same port), then wait (bounded) until no worker misses it.

        Returns how long the broker was away, from the stop to its answering again, in seconds.
        """
        self.marks["starting"] = time.time()
        self.broker.start(timeout=timeout_s)
        self.marks["answers"] = time.time()
        self.lab.wait_until(lambda s: not s.broker_lost, timeout_s)
        self.marks["back"] = time.time()
        return self.marks["answers"] - self.marks.get("stopping", self.marks["starting"])

    def caught_up(self, timeout_s: float = 30.0) -> bool:
        """Wait (bounded) until a lag reading taken after this call shows every group at 0; whether it did."""
        since = time.time()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._done.is_set():
            with self._lock:
                readings = [lag for at, lag in self._lags if at >= since and lag is not None]
            if readings and all(value == 0 for value in readings[-1].values()):
                return True
            time.sleep(self.every_s / 2)
        return False

    # -- what was seen ---------------------------------------------------------------
    @property
    def every_worker_noticed(self) -> bool:
        """Whether each worker said once that it lost the broker and once that it had it back."""
        lines = self._lines.copy()
        lost = sorted(line.worker for line in lines if not line.back)
        back = sorted(line.worker for line in lines if line.back)
        return bool(self.workers) and lost == back == list(self.workers)

    def outages(self) -> pd.DataFrame:
        """One row per worker running when the broker was stopped: when it said it lost the broker and why, and the
        time away it reported when back."""
        lines = self._lines.copy()
        rows = []
        for worker in self.workers:
            lost = [line for line in lines if line.worker == worker and not line.back]
            back = [line for line in lines if line.worker == worker and line.back]
            rows.append({
                "worker": worker,
                "lost it at": pd.Timestamp(lost[0].at, unit="s", tz="UTC") if lost else None,
                "symptom": lost[0].why if lost else "",
                "back after (s)": round(back[-1].away_s, 1) if back and back[-1].away_s is not None else None,
                "lost lines": len(lost),
                "back lines": len(back),
            })
        return pd.DataFrame(rows, columns=["worker", "lost it at", "symptom", "back after (s)", "lost lines",
                                           "back lines"]).set_index("worker")

    def client_lines(self) -> pd.DataFrame:
        """kafka-python's own log lines since the stop (as far as the buffer keeps them), alike ones counted once:
        its connections failing and its requests retried."""
        counted: dict[tuple[str, str, str], list[Any]] = {}
        for line in self.log_lines(own_only=False):
            clock, _, rest = line.partition(" ")
            level, _, rest = rest.partition(" ")
            logger, _, message = rest.partition(": ")
            if logger.startswith("orderlab"):
                continue
            kind = _DIGITS.sub("N", message)
            entry = counted.setdefault((level, logger, kind), [clock, clock, 0, message])
            entry[1] = clock
            entry[2] += 1
        rows = [{"level": level, "logger": logger, "first": first, "last": last, "lines": count, "example": example}
                for (level, logger, _kind), (first, last, count, example) in counted.items()]
        frame = pd.DataFrame(rows, columns=["level", "logger", "first", "last", "lines", "example"])
        return frame.sort_values(["lines", "first"], ascending=[False, True]).reset_index(drop=True)

    def log_lines(self, *, own_only: bool = True) -> list[str]:
        """The log buffer's lines since the broker was stopped: orderlab's own, or every one still kept."""
        return capture_logs().since(self.marks.get("stopping", 0.0), own_only=own_only)

    def frame(self) -> pd.DataFrame:
        """The samples: seconds since the stop, the broker up or away, orders placed and waiting,
        outcomes, e-mails, and each group's lag (none while the broker was away)."""
        with self._lock:
            samples, lags = list(self._samples), list(self._lags)
        zero = self.marks.get("stopping", samples[0].at if samples else time.time())
        groups = {str(self.lab.settings.group_id(spec.name)): spec.name for spec in self.lab.topology.consumers()}
        rows = []
        for sample in samples:
            reading = next((lag for at, lag in reversed(lags) if at <= sample.at + self.every_s / 2), None)
            fresh = next((at for at, _lag in reversed(lags) if at <= sample.at + self.every_s / 2), None)
            up = self._broker_up_at(sample.at)
            if not up or (fresh is not None and sample.at - fresh > 2 * self.every_s + 1.0):
                reading = None  # nothing to read while the broker is away; an old reading does not stand for now
            row: dict[str, Any] = {
                "s": round(sample.at - zero, 2),
                "broker": "up" if up else "away",
                "placed": sample.placed, "waiting in producer": sample.waiting, "settled": sample.settled,
                "e-mailed": sample.emailed,
            }
            for group, role in groups.items():
                row[f"lag {role}"] = None if reading is None else reading.get(group)
            rows.append(row)
        frame = pd.DataFrame(rows)
        for role in groups.values():
            if f"lag {role}" in frame:
                frame[f"lag {role}"] = frame[f"lag {role}"].astype("Int64")
        return frame.set_index("s") if not frame.empty else frame

    def _broker_up_at(self, at: float) -> bool:
        stopping, answers = self.marks.get("stopping"), self.marks.get("answers")
        if stopping is None or at < stopping:
            return True
        return answers is not None and at >= answers

    def peak_lag(self, role: str, *, after: str = "answers") -> int:
        """The highest lag of ``role``'s group read after the mark ``after`` (0 when none was read)."""
        frame = self.frame()
        column = f"lag {role}"
        if frame.empty or column not in frame:
            return 0
        since = self.marks.get(after)
        if since is None:
            return 0
        later = frame[frame.index >= since - self.marks.get("stopping", since)][column].dropna()
        return int(later.max()) if len(later) else 0
