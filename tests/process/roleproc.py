"""Helpers for the role-process tests: a handle on one ``orderlab run ROLE``
process (its log, counters and exit) and readers of what the roles did, from
Kafka (records, committed offsets, lag) and from the ledger file."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kafka import TopicPartition

from orderlab.clients import make_admin, make_consumer
from orderlab.lag import LagMeter
from orderlab.seed import SEED
from orderlab.services import OrdersBackend
from orderlab.settings import Settings

# "2026-11-25 17:31:55,547 INFO orderlab.run: orders: placed=42, acknowledged=41"
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) orderlab\.run: (.*)$")
WORKER = re.compile(r"^([\w.-]+): (idle|\w+=\d+(?:, \w+=\d+)*)$")


def parse_counters(message: str) -> dict[str, dict[str, int]] | None:
    """``"a: x=1, y=2 | b: idle"`` as ``{"a": {"x": 1, "y": 2}, "b": {}}``; None for other lines."""
    workers: dict[str, dict[str, int]] = {}
    for part in message.split(" | "):
        match = WORKER.match(part.strip())
        if match is None:
            return None
        name, shown = match.groups()
        workers[name] = {} if shown == "idle" else {k: int(v) for k, v in (item.split("=") for item in shown.split(", "))}
    return workers


@dataclass
class RoleProcess:
    """One ``orderlab run ROLE`` process and its log file."""

    role: str
    popen: subprocess.Popen
    log_path: Path
    exit_seconds: float | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def messages(self) -> list[tuple[dt.datetime, str]]:
        """(time, message) of every ``orderlab.run`` line logged so far."""
        found = []
        for line in self.log_text().splitlines():
            match = LOG_LINE.match(line)
            if match:
                stamp, _level, message = match.groups()
                found.append((dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f"), message))
        return found

    def counter_lines(self) -> list[tuple[dt.datetime, dict[str, dict[str, int]]]]:
        """The periodic counter lines, oldest first."""
        lines = []
        for when, message in self.messages():
            counters = parse_counters(message)
            if counters is not None:
                lines.append((when, counters))
        return lines

    def final_counters(self) -> dict[str, dict[str, int]]:
        """The counters of the ``ROLE: stopped. ...`` line (fails when there is none)."""
        prefix = f"{self.role}: stopped. "
        for _when, message in reversed(self.messages()):
            if message.startswith(prefix):
                counters = parse_counters(message[len(prefix):])
                assert counters is not None, f"cannot read counters from {message!r}"
                return counters
        raise AssertionError(f"{self.role} logged no 'stopped.' line:\n{self.log_text()}")

    def wait_for(self, condition: Callable[["RoleProcess"], bool], timeout_s: float, what: str) -> None:
        """Poll ``condition`` until true; fail after ``timeout_s`` or when the process ends first."""
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.role} exited ({self.popen.returncode}) before {what}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.role}: not {what} within {timeout_s:.0f} s:\n{self.log_text()}")
            time.sleep(0.1)

    def wait_running(self, timeout_s: float = 60.0) -> "RoleProcess":
        self.wait_for(lambda p: any(" running " in m for _, m in p.messages()), timeout_s, "running")
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """Send ``sig`` and wait for the exit; fail unless it exits within ``timeout_s``."""
        sent = time.monotonic()
        self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.role} still running {timeout_s:.0f} s after {sig.name}:\n{self.log_text()}") from None
        self.exit_seconds = time.monotonic() - sent
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)


# -- reading what the processes did ------------------------------------------------------

def place_orders(settings: Settings, count: int) -> list[str]:
    """Place ``count`` generated orders and wait for the broker's acks; their ids."""
    backend = OrdersBackend(settings, SEED.role("orders"), keep_ids=True)
    with backend:
        futures = [backend.place(backend.factory.make()) for _ in range(count)]
        for future in futures:
            future.get(timeout=30)
    return list(backend.placed_ids)


def paid_order_ids(settings: Settings) -> set[str]:
    """Order ids the ledger has a payment for (read while the roles may be writing)."""
    connection = sqlite3.connect(settings.db_path, timeout=30)
    try:
        return {order_id for (order_id,) in connection.execute("SELECT order_id FROM payments")}
    except sqlite3.OperationalError:  # the role has not created the schema yet
        return set()
    finally:
        connection.close()


def record_positions(settings: Settings, topic: str, timeout_s: float = 30.0) -> dict[str, tuple[int, int]]:
    """``{key: (partition, offset)}`` of every record of ``topic`` up to its end now."""
    consumer = make_consumer(settings, None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        positions: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within {timeout_s:.0f} s"
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if record.offset < end[TopicPartition(record.topic, record.partition)]:
                        positions[record.key.decode()] = (record.partition, record.offset)
        return positions
    finally:
        consumer.close(autocommit=False)


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """``{partition: committed offset}`` of ``group`` on ``topic`` (0 where nothing was committed)."""
    admin = make_admin(settings)
    reader = make_consumer(settings, None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        offsets = admin.list_group_offsets({group: tps}).get(group, {})
        return {tp.partition: max(0, offsets[tp].offset) if tp in offsets else 0 for tp in tps}
    finally:
        reader.close(autocommit=False)
        admin.close()


def group_lag(settings: Settings, role: str) -> int:
    meter = LagMeter(settings)
    try:
        return meter.lag({settings.group_id(role): (settings.order_details_topic,)})[settings.group_id(role)]
    finally:
        meter.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, *watched: RoleProcess) -> None:
    """Poll ``condition`` every 0.2 s; on timeout fail with the logs of the ``watched`` processes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            for process in watched:
                if process.popen.poll() is None:
                    process.popen.send_signal(signal.SIGUSR1)  # the role dumps its threads' stacks to the log
            time.sleep(1.0 if watched else 0)
            logs = "".join(f"\n--- {p.role} (pid {p.pid}, exit {p.popen.poll()}) ---\n{p.log_text()}" for p in watched)
            raise AssertionError(f"not {what} within {timeout_s:.0f} s{logs}")
        time.sleep(0.2)
