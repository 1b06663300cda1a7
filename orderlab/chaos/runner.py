"""Running a scenario: a Lab on fresh topics, the fault, a bounded wait until
everything settled, then reconciliation by reading the topics, the ledger
and the inbox.

Each scenario gets its own topic suffix, its own ledger file and its own
embedded SMTP catcher, so its figures count only its own orders. Consumers
use a short session timeout, so a crashed worker's partitions move on in
seconds rather than the default ten.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from kafka.errors import KafkaError

from ..broker import LocalBroker, free_port
from ..clients import BrokerUnavailable
from ..lab import Lab
from ..ledger import Ledger
from ..reconcile import read_keys_by_position
from ..settings import Settings, SettingsError, new_run_suffix
from .report import SCENARIOS, Figures, Observed, ScenarioResult, count, failures
from .scenarios import DEFAULT_WORKERS, FAULTS, WORKERS, Run

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

MIN_ORDERS = 20
# Short sessions: a crashed worker's partitions are reassigned within seconds.
# The broker allows down to 1 s (group.min.session.timeout.ms); 4 s leaves room
# for a busy 2-core machine, where a heartbeat thread can be late.
CHAOS_CONSUMER_CONFIG: dict[str, Any] = {"session_timeout_ms": 4000, "heartbeat_interval_ms": 500}
SETTLE_MARGIN_S = 90.0


def check_arguments(name: str, orders: int, rate: float) -> None:
    if name not in SCENARIOS:
        raise ValueError(f"unknown chaos scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if isinstance(orders, bool) or not isinstance(orders, int) or orders < MIN_ORDERS:
        raise ValueError(f"orders must be a whole number >= {MIN_ORDERS} (faults land at a third of the flow), got {orders!r}")
    if not rate > 0:
        raise ValueError(f"rate must be > 0 orders/s, got {rate!r}")


@contextlib.contextmanager
def private_broker(progress: Progress | None = None) -> Iterator[LocalBroker]:
    """A LocalBroker on a free port in a temporary folder, stopped (and removed) at the end, even on failure."""
    with tempfile.TemporaryDirectory(prefix="orderlab-chaos-broker-") as folder:
        broker = LocalBroker(Path(folder), free_port(), heap_mb=512)
        if progress:
            progress(f"starting a private Kafka broker at {broker.bootstrap_servers}")
        try:
            broker.start()
            yield broker
        finally:
            if not broker.stop(timeout=20):
                broker.kill()


def run_scenario(
    name: str,
    *,
    orders: int = 300,
    rate: float = 200.0,
    exactly_once: bool = False,
    settings: Settings | None = None,
    broker: LocalBroker | None = None,
    progress: Progress | None = None,
) -> ScenarioResult:
    """Run one scenario and reconcile it.

    ``settings`` gives the broker address and client options (``exactly_once``
    is taken from the argument, not from them). With ``broker`` the lab
    talks to that LocalBroker; broker_restart needs one it may restart and
    starts a private one when none is given. Raises ValueError for bad
    arguments and BrokerUnavailable when there is no broker; a scenario that
    goes wrong in any other way is a failed result saying why.
    """
    check_arguments(name, orders, rate)
    base = settings or Settings.from_env()
    if name == "broker_restart" and broker is None:
        with private_broker(progress) as own:
            return run_scenario(name, orders=orders, rate=rate, exactly_once=exactly_once, settings=base, broker=own, progress=progress)
    if broker is not None:
        base = base.with_(bootstrap_servers=broker.bootstrap_servers, security_protocol="PLAINTEXT")
    say = (lambda message: progress(f"{name}: {message}")) if progress else (lambda message: None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"orderlab-chaos-{name}-") as folder:
        settings = base.with_(
            topic_suffix=new_run_suffix(f"chaos-{name.replace('_', '-')}"),
            exactly_once=exactly_once,
            smtp_host="",  # the embedded catcher: smtp_down stops it, and its inbox is counted
            db_url=base.db_url or f"sqlite:///{Path(folder) / 'ledger.db'}",
        )
        ledger = Ledger.from_settings(settings)
        try:
            return _run(name, settings, ledger, orders, rate, broker, say, started)
        finally:
            ledger.close()


def _run(
    name: str, settings: Settings, ledger: Ledger, orders: int, rate: float,
    broker: LocalBroker | None, say: Progress, started: float,
) -> ScenarioResult:
    lab = Lab(
        settings, rate=0, workers=WORKERS.get(name, DEFAULT_WORKERS), limit=orders, ledger=ledger,
        consumer_config=CHAOS_CONSUMER_CONFIG,
    )
    run = Run(lab, settings, orders, rate, broker=broker, say=say)
    say(f"{'exactly-once' if settings.exactly_once else 'at-least-once'}, {orders} orders at {rate:g}/s")
    observed: Observed | None = None
    try:
        lab.start()
        try:
            FAULTS[name](run)
            settle(run, timeout=orders / rate + SETTLE_MARGIN_S)
        finally:
            lab.stop()
        observed = observe(run, ledger)
    except (BrokerUnavailable, SettingsError):
        raise
    except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a failed result, not a traceback
        log.debug("chaos %s failed", name, exc_info=True)
        run.problems.append(f"{type(exc).__name__}: {exc}")
    return _result(name, run, observed, time.monotonic() - started)


def settle(run: Run, timeout: float) -> bool:
    """Wait (bounded) until every order was placed, settled, e-mailed and seen by analytics.

    Settled means the transactions group has no lag (every order_details
    record was processed and its output committed), analytics has seen
    every order, and the ledger has an e-mail for every charged order. Lag is read from the group's committed
    offsets, which in exactly-once mode are committed with the output.
    """
    lab = run.lab
    group = run.settings.group_id("transactions")
    orders, ledger = lab.orders, lab.ledger
    if orders is None or ledger is None:
        raise RuntimeError("settle() needs a started lab: it has no order source or ledger yet")

    def done(snapshot: Any) -> bool:
        counters = orders.counters
        if snapshot.placed < run.orders or counters["acknowledged"] + counters["send_errors"] < snapshot.placed:
            return False
        try:
            if lab.snapshot().lag.get(group, 1) != 0:
                return False
        except (KafkaError, OSError):  # the broker is still coming back
            return False
        placed = orders.placed_ids
        if snapshot.analytics_orders_seen < len(set(placed)):
            return False  # analytics reads order_details too, and dead-letters its poison as well
        return ledger.email_count(placed) >= ledger.charge_count(placed)

    run.say("waiting for every order to settle")
    last = lab.wait_until(done, timeout, poll_s=0.3)
    if done(last):
        run.say("settled")
        return True
    placed = orders.placed_ids
    try:
        lag = lab.snapshot().lag
    except (KafkaError, OSError) as exc:
        lag = {"error": str(exc)}
    run.problems.append(
        f"not settled within {timeout:.0f} s (placed {last.placed}, acknowledged {orders.counters['acknowledged']}, "
        f"settled {last.settled}, charged {ledger.charge_count(placed)}, e-mailed {ledger.email_count(placed)}, "
        f"analytics saw {last.analytics_orders_seen}, lag {lag}, roles {lab.failures() or 'all running'})"
    )
    return False


def observe(run: Run, ledger: Ledger) -> Observed:
    """Read every topic of the run (as its readers would), the ledger and the inbox."""
    s = run.settings
    lab = run.lab
    placed = tuple(lab.orders.placed_ids) if lab.orders is not None else ()
    confirmed = tuple(read_keys_by_position(s, s.order_confirmed_topic).values())
    declined = tuple(read_keys_by_position(s, s.order_declined_topic).values())
    run.extra["order_details_records"] = len(read_keys_by_position(s, s.order_details_topic))
    in_log = None
    if s.exactly_once:
        # what is physically in the log, aborted transactions included
        raw = s.with_(exactly_once=False)
        in_log = len(read_keys_by_position(raw, s.order_confirmed_topic)) + len(read_keys_by_position(raw, s.order_declined_topic))
    letters = tuple(
        (letter.key.decode(errors="replace") if letter.key is not None else None, letter.reason) for letter in lab.dead_letters()
    )
    return Observed(
        placed=placed,
        confirmed=confirmed,
        declined=declined,
        emailed=tuple(mail.order_id for mail in lab.emails() if mail.order_id),
        double_charged=ledger.double_charged(placed),
        dead_letters=letters,
        outcome_records_in_log=in_log,
    )


def _result(name: str, run: Run, observed: Observed | None, seconds: float) -> ScenarioResult:
    exactly_once = run.settings.exactly_once
    if observed is None:
        observed = Observed((), (), (), (), 0, ())
        run.problems.append("could not reconcile: the topics were not read")
    figures = count(observed, run.bad)
    why = failures(figures, exactly_once=exactly_once, problems=run.problems)
    extra = {**run.extra, **_figure_extras(figures)}
    detail = "; ".join(run.notes + [_duplicates_note(figures, exactly_once)])
    if why:
        detail = "FAILED: " + "; ".join(why) + (f". {detail}" if detail else "")
    return ScenarioResult(
        name=name,
        orders=len(observed.placed),
        lost=figures.lost,
        double_charged=figures.double_charged,
        double_emailed=figures.double_emailed,
        dead_lettered=figures.dead_lettered,
        bad_records=len(run.bad),
        duplicates_in_output=figures.duplicates_in_output,
        exactly_once=exactly_once,
        passed=not why,
        seconds=seconds,
        detail=detail,
        extra=extra,
    )


def _figure_extras(figures: Figures) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "no_outcome": figures.no_outcome,
        "no_email": figures.no_email,
        "unmatched_bad_records": list(figures.unmatched_bad),
        "unexpected_dead_letters": figures.unexpected_dead_letters,
    }
    if figures.aborted_outcomes is not None:
        extra["aborted_outcome_records_in_log"] = figures.aborted_outcomes
    return extra


def _duplicates_note(figures: Figures, exactly_once: bool) -> str:
    if exactly_once:
        hidden = figures.aborted_outcomes or 0
        return (
            f"{figures.duplicates_in_output} duplicate outcome records for read_committed readers; "
            f"{hidden} records of aborted transactions in the log, invisible to them"
        )
    if figures.duplicates_in_output:
        return (
            f"{figures.duplicates_in_output} duplicate outcome records (at-least-once redelivery); "
            "the ledger charged and e-mailed each order once"
        )
    return "no duplicate outcome records"


def compare_delivery_modes(
    *,
    orders: int = 300,
    settings: Settings | None = None,
    rate: float = 200.0,
    broker: LocalBroker | None = None,
    progress: Progress | None = None,
) -> dict[str, ScenarioResult]:
    """worker_crash at-least-once and exactly-once: ``{"at_least_once": ..., "exactly_once": ...}``."""
    return {
        key: run_scenario(
            "worker_crash", orders=orders, rate=rate, exactly_once=eos, settings=settings, broker=broker, progress=progress
        )
        for key, eos in (("at_least_once", False), ("exactly_once", True))
    }
