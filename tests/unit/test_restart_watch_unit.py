"""The restart watch of lesson 07 over a stand-in lab and broker (no Kafka): the steps and their marks, the
samples with no lag while the broker is away, and each worker's lost/back lines read from the outage logger.
A real broker restarted under a real Lab is ``tests/integration/test_restart_watch.py``."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Callable

from orderlab.restart import RestartWatch
from orderlab.seed import SEED
from orderlab.services.outage import Outage
from orderlab.settings import Settings
from orderlab.ui.logs import capture_logs

WORKERS = ("orders", "transactions-0", "email", "analytics")


class StandInLab:
    """What RestartWatch reads of a Lab: settings, topology, snapshots, bounded waits."""

    settings = Settings(bootstrap_servers="127.0.0.1:1", topic_suffix="-unit")  # nothing answers there: no lag is read
    topology = SEED

    def __init__(self) -> None:
        self.outages = {name: Outage(name, grace_s=0.0) for name in WORKERS}
        self.placed = 0

    def snapshot(self, with_lag: bool = True) -> Any:
        self.placed += 1
        lost = {name: o.since for name, o in self.outages.items() if o.since is not None}
        return SimpleNamespace(taken_at=time.time(), placed=self.placed, settled=0, emails_sent=0, broker_lost=lost,
                               roles={name: ({"unacknowledged": 5} if name == "orders" else {}) for name in WORKERS},
                               totals={})

    def wait_until(self, condition: Callable[[Any], bool], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.snapshot()
            if condition(snapshot) or time.monotonic() >= deadline:
                return snapshot
            time.sleep(0.02)


class StandInBroker:
    """Stopping it makes every worker lose the broker (``twice``: one of them twice); starting it brings them back."""

    def __init__(self, lab: StandInLab, *, twice: str = "") -> None:
        self.lab = lab
        self.twice = twice

    def stop(self, timeout: float = 20.0) -> bool:
        for name, outage in self.lab.outages.items():
            outage.failing("connection", "no connection to any broker")
            if name == self.twice:
                outage.fine("connection")
                outage.failing("connection", "no connection to any broker")
        return True

    def start(self, timeout: float = 60.0) -> None:
        time.sleep(0.1)
        for outage in self.lab.outages.values():
            outage.fine("connection")


def test_the_watch_marks_each_step_and_reads_what_each_worker_said() -> None:
    capture_logs()
    lab = StandInLab()
    with RestartWatch(lab, StandInBroker(lab), every_s=0.05) as watch:
        watch.hold(0.2)
        assert watch.stop_broker() >= 0.0
        assert watch.hold(0.3) == 5
        assert watch.start_broker() > 0.0
        watch.hold(0.2)
    assert list(watch.marks) == ["stopping", "stopped", "noticed", "starting", "answers", "back"]
    assert watch.every_worker_noticed
    outages = watch.outages()
    assert sorted(outages.index) == sorted(WORKERS)
    assert (outages["lost lines"] == 1).all() and (outages["back lines"] == 1).all()
    assert set(outages.symptom) == {"no connection to any broker"} and (outages["back after (s)"] >= 0).all()
    lines = watch.log_lines()
    assert sum("lost the broker" in line for line in lines) == 4 and sum("broker back after" in line for line in lines) == 4

    frame = watch.frame()
    assert {"up", "away"} == set(frame.broker)
    assert frame.index.min() < 0 < frame.index.max()  # samples before the stop and after it
    assert frame.filter(like="lag ").isna().all().all()  # nothing answered: no lag was read, up or away
    assert list(frame.filter(like="lag ").columns) == ["lag transactions", "lag email", "lag analytics"]
    assert watch.peak_lag("transactions") == 0


def test_a_worker_that_says_twice_it_lost_the_broker_is_not_once() -> None:
    capture_logs()
    lab = StandInLab()
    with RestartWatch(lab, StandInBroker(lab, twice="analytics"), every_s=0.05) as watch:
        watch.stop_broker()
        watch.start_broker()
    assert not watch.every_worker_noticed
    assert watch.outages().loc["analytics", "lost lines"] == 2
