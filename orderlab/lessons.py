"""What the lesson notebooks call, so no notebook holds logic a test cannot reach.

- :func:`lesson_lab`: a :class:`~orderlab.lab.Lab` on topics, groups and a
  ledger of its own (``-lesson05-1a2b3c4d``), so a rerun, or an earlier run
  that crashed, cannot leak records into this one;
- :func:`broker_status` / :func:`create_topics`: the first steps of lesson 00;
- :func:`check`: the exercises' check cells;
- :func:`reset_classroom`: one call that removes what earlier lesson runs left
  on the broker, for the next class.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .cleanup import clean, lesson_ledger_dir, remove_run
from .clients import BrokerUnavailable, check_broker, make_consumer
from .generator import OrderFactory
from .lab import Lab
from .payments import PaymentRules, decide_payment
from .settings import Settings, new_run_suffix
from .topics import ensure_topics
from .topology import load_topology
from .ui.logs import capture_logs
from .ui.mode import lesson_seconds

# "-lesson05-1a2b3c4d": what new_run_suffix(lesson) makes for a lesson
LESSON_SUFFIX = re.compile(r"-(lesson\d\d[a-z0-9_]*)-([0-9a-f]{8})$")
# Consumer settings for lessons that crash workers: a dead worker's partitions
# move on after 4 s instead of the default 10.
FAST_FAILOVER: dict[str, Any] = {"session_timeout_ms": 4000, "heartbeat_interval_ms": 500}


def ledger_dir() -> Path:
    """Where lesson runs keep their ledgers (a temp folder: removed with the run, or by :func:`reset_classroom`)."""
    return lesson_ledger_dir()


def lesson_settings(lesson: str, **overrides: Any) -> Settings:
    """Settings from the environment with a fresh topic suffix and a ledger of this run's own.

    Also keeps log records out of the notebook's cells from now on (see :func:`capture_logs`).
    """
    capture_logs()
    suffix = new_run_suffix(lesson)
    if not LESSON_SUFFIX.search(suffix):
        raise ValueError(f"lesson names look like 'lesson05' or 'lesson05_extra', got {lesson!r}")
    db = ledger_dir() / f"{suffix.lstrip('-')}.db"
    values: dict[str, Any] = {"topic_suffix": suffix, "db_url": f"sqlite:///{db}"}
    values.update(overrides)
    return Settings.from_env(**values)


def lesson_lab(lesson: str, *, settings: Settings | None = None, **lab_options: Any) -> Lab:
    """A Lab for one lesson run (not started). Log records go to a buffer, not into cells."""
    capture_logs()
    return Lab(settings or lesson_settings(lesson), **lab_options)


def broker_status(settings: Settings | None = None, *, start_local: bool = False, timeout_s: float = 5.0) -> str:
    """One line saying whether Kafka answers; with ``start_local`` start the local broker if not.

    Starting works for a local address only (127.0.0.1 or localhost), as
    ``orderlab broker start`` does; it needs Java 17+ (and Maven once).
    """
    settings = settings or Settings.from_env()
    try:
        check_broker(settings, timeout_s=timeout_s)
        return f"Kafka answers at {settings.bootstrap_servers}"
    except BrokerUnavailable as exc:
        if not start_local:
            return str(exc)
    from .broker import BrokerError, LocalBroker
    from .broker.procs import default_port

    host = settings.bootstrap_servers.split(",")[0].rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost"):
        return f"no Kafka answers at {settings.bootstrap_servers}, and it is not a local address to start one on"
    broker = LocalBroker(port=default_port(settings.bootstrap_servers))
    try:
        broker.start()
    except BrokerError as exc:
        return f"could not start a local broker: {exc}"
    return f"started a local Kafka; it answers at {broker.bootstrap_servers}"


class SpareBroker:
    """A private Kafka broker (temporary folder, free port) that a lesson may stop and restart.

    ``start()`` returns at once and the JVM starts in a background thread,
    so the broker is usually up by the time the lesson needs it; ``wait()``
    returns it (bounded), ``stop()`` stops it and removes its folder. The
    shared broker of the class is never touched.
    """

    def __init__(self) -> None:
        self.broker: Any = None
        self.error: BaseException | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "SpareBroker":
        if self._thread is not None:
            return self
        from .broker import LocalBroker, ensure_jars, free_port

        self._folder = tempfile.TemporaryDirectory(prefix="orderlab-spare-broker-")
        self.broker = LocalBroker(Path(self._folder.name), free_port(), heap_mb=512)

        def launch() -> None:
            try:
                ensure_jars(quiet=True)  # a first fetch must not print into whichever cell runs
                self.broker.start()
            except BaseException as exc:  # noqa: BLE001 - kept for wait(), never printed
                self.error = exc

        self._thread = threading.Thread(target=launch, name="orderlab-spare-broker", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float = 120.0) -> Any:
        """The running LocalBroker, once it answers (raises if it could not start in time)."""
        thread = self._thread
        if thread is None:
            self.start()
            thread = self._thread
        if thread is None:
            raise RuntimeError("the spare broker's start thread did not begin")
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the spare broker did not start within {timeout:.0f} s")
        if self.error is not None:
            raise RuntimeError(f"the spare broker could not start: {self.error}")
        return self.broker

    def stop(self) -> None:
        """Stop the broker (SIGKILL if it does not stop in 20 s) and remove its folder. Idempotent."""
        if self._thread is not None:
            self._thread.join(120)
        if self.broker is not None:
            self.broker.stop(timeout=20)  # SIGKILL after 20 s
        self.broker = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._thread = None


def create_topics(settings: Settings) -> pd.DataFrame:
    """Create this run's topics (idempotent) and list them with their partitions."""
    plan = ensure_topics(settings)
    return pd.DataFrame(
        {"partitions": list(plan.values()), "kind": ["dead letters" if t.endswith(".dlq") else "events" for t in plan]},
        index=pd.Index(list(plan), name="topic"),
    )


def partition_count(settings: Settings, topic: str) -> int:
    """How many partitions the broker says ``topic`` has (0 when it does not exist)."""
    consumer = make_consumer(settings, None)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close(autocommit=False)


def payment_examples(count: int = 8, *, decline_probability: float = 0.3, seed: int = 7) -> pd.DataFrame:
    """Made-up orders and what the payment simulation decides for each (seeded: the same every run)."""
    factory = OrderFactory(seed=seed, customers=50)
    rng = random.Random(seed)
    rules = PaymentRules(decline_probability)
    rows = []
    for number in range(count):
        order = factory.make(now=1_700_000_000.0 + number)
        result = decide_payment(order, rules, rng, now=order.created_at)
        rows.append({
            "order": order.order_id[:8], "customer": order.customer_email, "units": order.item_count,
            "total": order.total_cents / 100.0, "approved": result.approved, "reason": result.reason,
        })
    return pd.DataFrame(rows)


def decline_share(decline_probability: float, orders: int = 1000, *, seed: int = 7) -> float:
    """The share of ``orders`` made-up orders the simulation declines (seeded)."""
    frame = payment_examples(orders, decline_probability=decline_probability, seed=seed)
    return float(1.0 - frame["approved"].mean())


def drained(snapshot: Any) -> bool:
    """True when every record placed so far has gone all the way through the pipeline.

    Counted in records, not orders, so an order sent twice (or read twice
    after a crash) is waited for twice: every order_details record has an
    outcome record, the e-mail role has handled every confirmation record,
    and analytics has read every record of the three topics.
    """
    email = snapshot.roles.get("email", {}).get("consumed", 0)
    analytics = snapshot.roles.get("analytics", {}).get("consumed", 0)
    return (
        snapshot.settled >= snapshot.placed
        and email >= snapshot.confirmed
        and analytics >= snapshot.placed + snapshot.settled
    )


def drain(lab: Lab, timeout_s: float = 60.0) -> Any:
    """Wait (bounded) until :func:`drained`; returns the last snapshot."""
    return lab.wait_until(drained, timeout_s)


def play_phases(lab: Lab, phases: Iterable[tuple[float, float]]) -> int:
    """Traffic with a shape: for each ``(orders per second, seconds)``, that many orders at that rate, one phase
    after the other; returns how many orders were placed.

    Under test mode each phase is shorter, at the same rate (:func:`~orderlab.ui.mode.lesson_seconds`).
    """
    placed = 0
    for rate, seconds in phases:
        count = max(1, round(rate * lesson_seconds(seconds)))
        lab.generate(count, rate=rate)
        placed += count
    return placed


def wait_for_lag(lab: Lab, role: str, below: int, timeout_s: float = 30.0, *, poll_s: float = 0.5) -> tuple[bool, list[int]]:
    """Wait (bounded) until ``role``'s consumer group is fewer than ``below`` records behind.

    Returns whether it got there and the lag measured at each poll.
    """
    group = lab.settings.group_id(role)
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while True:
        behind = lab.snapshot().lag.get(group, 0)
        seen.append(behind)
        if behind < below:
            return True, seen
        if time.monotonic() >= deadline:
            return False, seen
        failed = lab.failures()
        if failed:
            raise RuntimeError("; ".join(f"{name} failed: {error}" for name, error in failed.items()))
        time.sleep(poll_s)


def roles_map(settings: Settings) -> pd.DataFrame:
    """The roles of the configured topology: what each reads, what it writes, and its consumer group."""
    topology = load_topology(settings.topology)
    rows = []
    for spec in topology.roles:
        ports = spec.ports(settings)
        reads = ", ".join([*ports.topics, *([spec.outside_in] if spec.outside_in else [])])
        writes = ", ".join([*ports.outputs.values(), *([spec.outside_out] if spec.outside_out else [])])
        rows.append((spec.name, reads, writes, ports.group_id or "(producer only)"))
    return pd.DataFrame(rows, columns=["role", "reads", "writes", "consumer group"]).set_index("role")


def inject_records(lab: Lab, records: Iterable[tuple[str | None, bytes | None]]) -> int:
    """Write raw records straight into ``order_details``, past the Orders Backend's checks, as a
    buggy producer would; returns how many (each acknowledged by the broker)."""
    if lab.producer is None:
        raise RuntimeError("the lab is not running: call lab.start() first")
    topic = lab.settings.order_details_topic
    futures = [lab.producer.send(topic, key=key.encode() if key else None, value=value) for key, value in records]
    for future in futures:
        future.get(timeout=30)
    return len(futures)


def side_by_side(results: dict[str, Any]) -> pd.DataFrame:
    """Chaos results (``{mode: ScenarioResult}``) as one column per mode, one row per figure."""
    rows = {
        "orders": "orders",
        "lost": "lost",
        "charged twice": "double_charged",
        "e-mailed twice": "double_emailed",
        "duplicate outcome records": "duplicates_in_output",
        "passed": "passed",
    }
    table = {
        mode.replace("_", "-"): {label: getattr(result, field) for label, field in rows.items()}
        | {"aborted records in the log": result.extra.get("aborted_outcome_records_in_log", "-")}
        for mode, result in results.items()
    }
    return pd.DataFrame(table)


def check(what: str, passed: bool, hint: str = "") -> None:
    """An exercise's check: prints one line with ✓, or ✗ and a hint."""
    print(f"✓ {what}" if passed else f"✗ {what}" + (f": {hint}" if hint else ""))


def reset_classroom(settings: Settings | None = None, *, dry_run: bool = False) -> pd.DataFrame:
    """Delete the topics, consumer groups and ledgers that earlier lesson runs left behind.

    A run is left alone while any of its consumer groups has members, so a
    lesson that is running in another notebook keeps working. Returns one row
    per run: what was (or, with ``dry_run``, would be) removed.
    """
    found = clean(settings or Settings.from_env(), dry_run=dry_run, pattern=LESSON_SUFFIX)
    rows = [{"run": run.suffix.lstrip("-"), "topics": len(run.topics), "groups": len(run.groups), "removed": removed}
            for run, removed in found]
    return pd.DataFrame(rows, columns=["run", "topics", "groups", "removed"])


def finish_lesson(lab: Lab) -> int:
    """A lesson's last step: stop its lab (if still running) and remove its run's topics, groups and ledger."""
    lab.stop()
    return remove_run(lab.settings)
