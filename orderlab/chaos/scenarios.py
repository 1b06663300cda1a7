"""The faults: one function per scenario, run against a started :class:`~orderlab.lab.Lab`.

Each function starts the order flow, injects its fault while orders flow
and returns; the runner then waits until the pipeline has settled and
reconciles. A function writes what it did into :attr:`Run.notes` (for the
report), the figures worth keeping into :attr:`Run.extra`, every record it
injected on purpose into :attr:`Run.bad`, and anything that means the fault
did not really happen into :attr:`Run.problems` (which fails the scenario).

Where a fault needs the flow to still be going when it lands (a broker that
takes seconds to stop, workers that take seconds to join), the scenario
pauses the generator at a threshold, injects the fault, and resumes, so the
outcome does not depend on how fast this machine is.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..broker import LocalBroker
from ..clients import make_producer
from ..events import encode_order
from ..generator import OrderFactory
from ..lab import Lab
from ..mail import MailCatcher
from ..settings import Settings
from .report import BadRecord

# A crash must lose real work: the worker dies at its first batch of at least
# this many records, with that batch's output sent and its offsets not committed.
CRASH_MIN_RECORDS = 3
CRASH_PAYMENT_LATENCY_MS = 50
FAULT_WAIT_S = 30.0
SMTP_RETRIES_WHILE_DOWN = 4  # bound on waiting for a fault step (a crash, a restart, a join)


@dataclass
class Run:
    """One scenario in progress: the lab, its settings and what the scenario reports."""

    lab: Lab
    settings: Settings
    orders: int
    rate: float
    broker: LocalBroker | None = None
    cluster: Any = None  # a LocalCluster, for leader_kill
    catcher: MailCatcher | None = None  # the scenario's own, when a role runs outside the lab (hard kills)
    say: Callable[[str], None] = lambda message: None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    bad: list[BadRecord] = field(default_factory=list)
    processes: list[Any] = field(default_factory=list)  # ChildProcess: stopped by the runner, whatever happens
    emailed_twice_allowed: int = 0  # how many e-mails the fault may send twice (email_kill: RESEND_WINDOW)

    @property
    def placed(self) -> int:
        return self.lab.snapshot(with_lag=False).placed

    def flow(self, on: bool = True) -> None:
        """Resume (or pause) the order generator."""
        self.lab.set_rate(self.rate if on else 0.0)

    def until(self, condition: Callable[[], bool], what: str, timeout: float = FAULT_WAIT_S) -> bool:
        """Wait (bounded) for ``condition``; a role failing or the bound passing is a problem."""
        snapshot = self.lab.wait_until(lambda _snapshot: condition(), timeout)
        if condition():
            return True
        self.problems.append(f"{what} did not happen within {timeout:.0f} s (placed {snapshot.placed})")
        return False

    def until_placed(self, count: int, timeout: float | None = None) -> bool:
        bound = timeout if timeout is not None else count / self.rate + FAULT_WAIT_S
        return self.until(lambda: self.placed >= count, f"placing {count} orders", bound)


# -- the scenarios -------------------------------------------------------------------

def worker_crash(run: Run) -> None:
    """A transactions worker dies mid-batch: output sent, offsets never committed, no LeaveGroup."""
    lab = run.lab
    run.flow()
    run.until_placed(run.orders // 4)
    # Slow payments make a backlog, so the worker soon polls a real batch
    # (at low rates a fast worker sees one or two records per poll).
    lab.set_payment_latency_ms(CRASH_PAYMENT_LATENCY_MS)
    worker = lab.crash_worker(0, min_records=CRASH_MIN_RECORDS)
    run.say(f"payments slowed to {CRASH_PAYMENT_LATENCY_MS} ms; crash requested for {worker.name} at its next batch of >= {CRASH_MIN_RECORDS} records")
    crashed = run.until(lambda: not worker.alive, f"the crash of {worker.name}")
    lab.set_payment_latency_ms(0)
    if not crashed:
        return
    batch = worker.counters["crash_batch_records"]
    run.extra["crashed_batch_records"] = batch
    replaced = lab.replace_dead_workers()
    run.extra["replacements"] = replaced
    how = (
        "its transaction left open, then aborted when the replacement took over its transactional id"
        if run.settings.exactly_once
        else "its output acknowledged by the broker, its offsets never committed"
    )
    run.notes.append(f"{worker.name} crashed holding a batch of {batch} records ({how}); {replaced} replacement started")
    run.say(f"{worker.name} died with {batch} uncommitted records; replacement started")


def broker_restart(run: Run) -> None:
    """The broker is stopped (SIGTERM) and started again; orders are placed before, during and after."""
    broker = run.broker
    if broker is None:
        raise RuntimeError("broker_restart needs a LocalBroker it may restart")
    run.flow()
    run.until_placed(run.orders // 3)
    run.flow(False)
    # Break a pipeline in its steady state: every role has joined its group and
    # done work. (A consumer whose first group join is in flight when the broker
    # stops can stay without partitions after the restart: see the report.)
    run.until(lambda: _every_role_working(run.lab), "every role doing work before the broker stops")
    before = run.placed
    stopping = time.monotonic()
    broker.stop()
    down_at = time.monotonic()
    run.say(f"broker stopped after {before} orders ({down_at - stopping:.1f} s to stop)")
    run.flow()  # these orders wait in the producer's buffer until the broker is back
    run.until_placed(2 * run.orders // 3)
    run.flow(False)
    during = run.placed - before
    broker.start()
    up_at = time.monotonic()
    run.flow()
    run.extra.update(placed_while_down=during, seconds_down=round(up_at - down_at, 2))
    run.notes.append(
        f"broker stopped (SIGTERM) after {before} orders, down {up_at - down_at:.1f} s while {during} more were "
        f"placed, then started again on the same data and port"
    )
    run.say(f"broker back after {up_at - down_at:.1f} s; {during} orders were placed while it was down")
    if during == 0:
        run.problems.append("no order was placed while the broker was down")


def _every_role_working(lab: Lab) -> bool:
    snapshot = lab.snapshot(with_lag=False)
    return snapshot.settled > 0 and snapshot.emails_sent > 0 and snapshot.analytics_orders_seen > 0


def rebalance(run: Run) -> None:
    """Transactions workers go 1 -> 4 -> 1 while orders are waiting to be processed."""
    lab = run.lab
    run.flow()
    run.until_placed(run.orders // 3)
    run.flow(False)
    lab.scale_transactions(4)
    scaled_up = list(lab.workers)
    run.flow()
    run.say("scaled the transactions role to 4 workers")
    run.until_placed(2 * run.orders // 3)
    spread = run.until(
        lambda: all(worker.counters["consumed"] > 0 for worker in scaled_up), "work reaching all 4 workers"
    )
    run.flow(False)
    lab.scale_transactions(1)
    run.flow()
    run.say("scaled the transactions role back to 1 worker")
    consumed = {worker.name: worker.counters["consumed"] for worker in scaled_up}
    run.extra["consumed_per_worker_at_4"] = consumed
    run.notes.append(
        "transactions workers went 1 -> 4 -> 1 with orders waiting; "
        + ("every one of the 4 processed orders" if spread else "not every one of the 4 got work")
    )


def poison_records(run: Run) -> None:
    """Records that are not JSON, and JSON that is not an order, written straight into order_details."""
    run.flow()
    run.until_placed(run.orders // 3)
    valid = json.loads(encode_order(OrderFactory(customers=5).make()))
    not_an_order = {k: v for k, v in valid.items() if k != "items"}
    wrong_type = {**valid, "total_cents": "12.50"}
    poison: list[tuple[bytes | None, str]] = [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00binary", "not JSON"),
        (b"[1, 2, 3]", "expected a JSON object"),
        (None, "record has no value"),
        (json.dumps(not_an_order).encode(), "field 'items' is missing"),
        (json.dumps(wrong_type).encode(), "field 'total_cents' has the wrong type"),
    ]
    _write_raw(run, [(f"poison-{n}-{uuid.uuid4().hex[:8]}", value, reason) for n, (value, reason) in enumerate(poison)])
    run.notes.append(f"{len(poison)} poison records (not JSON, not an object, no value, invalid fields) written into order_details")
    run.say(f"wrote {len(poison)} poison records into {run.settings.order_details_topic}")


def invalid_orders(run: Run) -> None:
    """Orders that break the rules, placed through the API (OrdersBackend.submit) and through the topic."""
    run.flow()
    run.until_placed(run.orders // 3)
    factory = OrderFactory(customers=5)
    through_topic = []
    rejected_by_api = 0
    for kind, (spoil, reason) in INVALID_KINDS.items():
        for path in ("api", "topic"):
            payload = json.loads(encode_order(factory.make()))
            payload["order_id"] = f"invalid-{kind}-{path}-{uuid.uuid4().hex[:8]}"
            spoil(payload)
            if path == "api":
                placed = run.lab.place(payload)
                run.bad.append(BadRecord(payload["order_id"], "api", reason))
                if placed.accepted or reason not in placed.reason:
                    run.problems.append(f"the API answered {placed} for an order with {kind}")
                else:
                    rejected_by_api += 1
            else:
                through_topic.append((payload["order_id"], json.dumps(payload).encode(), reason))
    _write_raw(run, through_topic)
    run.extra["rejected_by_api"] = rejected_by_api
    run.notes.append(
        f"{rejected_by_api} invalid orders placed through the API (each refused with its reason) and "
        f"{len(through_topic)} written into order_details: {', '.join(INVALID_KINDS)}"
    )
    run.say(f"placed {rejected_by_api + len(through_topic)} invalid orders through the API and the topic")


def _negative_quantity(payload: dict[str, Any]) -> None:
    payload["items"][0]["quantity"] = -2
    payload["total_cents"] = sum(item["quantity"] * item["unit_price_cents"] for item in payload["items"])


def _unknown_currency(payload: dict[str, Any]) -> None:
    payload["currency"] = "XDG"


def _missing_email(payload: dict[str, Any]) -> None:
    del payload["customer_email"]


def _wrong_total(payload: dict[str, Any]) -> None:
    payload["total_cents"] += 1


INVALID_KINDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "negative_quantity": (_negative_quantity, "quantity of"),
    "unknown_currency": (_unknown_currency, "unknown currency"),
    "missing_email": (_missing_email, "customer_email is missing"),
    "wrong_total": (_wrong_total, "does not match its items"),
}


def smtp_down(run: Run) -> None:
    """The SMTP server goes away while confirmations flow, and comes back on the same port."""
    lab = run.lab
    catcher = lab.catcher
    email = lab.email
    if catcher is None or email is None:
        raise RuntimeError("smtp_down needs the lab's embedded SMTP catcher")
    run.flow()
    first = max(1, min(10, run.orders // 10))
    run.until(lambda: catcher.count() >= first, f"the first {first} e-mails")
    sent_before = catcher.count()
    catcher.stop()
    down_at = time.monotonic()
    retries_before = email.counters["smtp_retries"]
    run.say(f"SMTP server stopped after {sent_before} e-mails")
    # down until the notifier has felt it a few times (back-off 0.2, 0.4, 0.8, 1.6 s)
    # and more confirmations piled up behind it
    run.until(
        lambda: email.counters["smtp_retries"] >= retries_before + SMTP_RETRIES_WHILE_DOWN
        and run.placed >= 2 * run.orders // 3,
        "the e-mail role retrying against the stopped SMTP server",
    )
    retries = email.counters["smtp_retries"] - retries_before
    waiting = lab.snapshot(with_lag=False).confirmed - catcher.count()
    catcher.start()
    seconds = time.monotonic() - down_at
    run.extra.update(
        smtp_retries=retries, seconds_down=round(seconds, 2), emails_before_outage=sent_before,
        confirmed_waiting_for_smtp=waiting,
    )
    run.notes.append(
        f"SMTP server stopped after {sent_before} e-mails for {seconds:.1f} s ({retries} retries with back-off, "
        f"{waiting} confirmations waiting), then started again on port {catcher.port}"
    )
    if waiting <= 0:
        run.problems.append("no confirmation was waiting for an e-mail while SMTP was down")
    run.say(f"SMTP server back after {seconds:.1f} s")


def _write_raw(run: Run, records: list[tuple[str, bytes | None, str]]) -> None:
    """Write (key, value, expected reason) records into order_details, bypassing all validation."""
    if not records:
        return
    producer = make_producer(run.settings)
    try:
        futures = [
            producer.send(run.settings.order_details_topic, key=key.encode(), value=value) for key, value, _ in records
        ]
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=5)
    run.bad.extend(BadRecord(key, "topic", reason) for key, _value, reason in records)


FAULTS: dict[str, Callable[[Run], None]] = {
    "worker_crash": worker_crash,
    "broker_restart": broker_restart,
    "rebalance": rebalance,
    "poison_records": poison_records,
    "invalid_orders": invalid_orders,
    "smtp_down": smtp_down,
}
# how many transactions workers each scenario starts with
WORKERS = {"rebalance": 1}
DEFAULT_WORKERS = 2
