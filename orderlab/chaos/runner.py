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
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from kafka.errors import KafkaError

from ..broker import LocalBroker, free_port
from ..broker.cluster import LocalCluster
from ..broker.procs import free_consecutive_ports
from ..cleanup import remove_run
from ..clients import BrokerUnavailable
from ..lab import Lab
from ..ledger import Ledger
from ..mail import MailCatcher
from ..reconcile import read_dead_letters, read_keys_by_position
from ..settings import Settings, SettingsError, new_run_suffix
from ..topology import load_topology
from . import kills
from .processes import ChildProcess
from .report import CLUSTER_SCENARIOS, SCENARIOS, Figures, Observed, ScenarioResult, count, failures
from .scenarios import DEFAULT_WORKERS, FAULTS as SOFT_FAULTS, WORKERS, Run

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

MIN_ORDERS = 20
# Short sessions: a crashed worker's partitions are reassigned within seconds.
# The broker allows down to 1 s (group.min.session.timeout.ms); 4 s leaves room
# for a busy 2-core machine, where a heartbeat thread can be late.
CHAOS_CONSUMER_CONFIG: dict[str, Any] = {"session_timeout_ms": 4000, "heartbeat_interval_ms": 500}
SETTLE_MARGIN_S = 90.0
FAULTS = {**SOFT_FAULTS, **kills.KILLS}
OWN_BROKER = ("broker_restart", "broker_kill")  # scenarios that stop or kill their broker: never the shared one
CLUSTER_BROKERS = 3
DEMO_KILL_AT = 3  # demo_kill kills the first demo once a third of its orders are charged


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


@contextlib.contextmanager
def private_cluster(progress: Progress | None = None) -> Iterator[LocalCluster]:
    """A three-node LocalCluster on free ports in a temporary folder, stopped (and removed) at the end, even on failure."""
    with tempfile.TemporaryDirectory(prefix="orderlab-chaos-cluster-") as folder:
        cluster = LocalCluster(Path(folder), free_consecutive_ports(CLUSTER_BROKERS), CLUSTER_BROKERS)
        if progress:
            progress(f"starting a private three-node Kafka cluster at {cluster.bootstrap_servers}")
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def run_scenario(
    name: str,
    *,
    orders: int = 300,
    rate: float = 200.0,
    exactly_once: bool = False,
    settings: Settings | None = None,
    broker: LocalBroker | None = None,
    cluster: LocalCluster | None = None,
    progress: Progress | None = None,
) -> ScenarioResult:
    """Run one scenario and reconcile it.

    ``settings`` gives the broker address and client options (``exactly_once``
    is taken from the argument, not from them). With ``broker`` the lab
    talks to that LocalBroker; broker_restart and broker_kill need one they
    may stop or kill and start a private one when none is given. leader_kill
    runs on ``cluster``, or on a private three-node cluster it starts. Raises
    ValueError for bad arguments and BrokerUnavailable when there is no
    broker; a scenario that goes wrong in any other way is a failed result
    saying why. The run's topics and groups are removed at the end.
    """
    check_arguments(name, orders, rate)
    base = settings or Settings.from_env()
    again = dict(orders=orders, rate=rate, exactly_once=exactly_once, settings=base, progress=progress)
    if name in CLUSTER_SCENARIOS and cluster is None:
        with private_cluster(progress) as own_cluster:
            return run_scenario(name, cluster=own_cluster, **again)
    if name in OWN_BROKER and broker is None:
        with private_broker(progress) as own:
            return run_scenario(name, broker=own, **again)
    if name in CLUSTER_SCENARIOS and cluster is not None:
        base = base.with_(bootstrap_servers=cluster.bootstrap_servers, security_protocol="PLAINTEXT")
    elif broker is not None:
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
        catcher = _own_catcher(name)
        if catcher is not None:
            settings = settings.with_(smtp_host=catcher.host, smtp_port=catcher.port)
        try:
            if name == "demo_kill":
                return run_demo_kill(settings, ledger, catcher, orders, rate, say, started)
            return _run(name, settings, ledger, orders, rate, broker, say, started, cluster=cluster, catcher=catcher)
        finally:
            ledger.close()
            if catcher is not None:
                catcher.stop()
            _remove_topics(settings)


def _own_catcher(name: str) -> MailCatcher | None:
    """The SMTP catcher of a scenario whose e-mail role may run in a process of its own (the lab's embedded one
    would only be seen by the lab)."""
    if name not in (*kills.OUT_OF_PROCESS, "demo_kill"):
        return None
    return MailCatcher(reply_delay_s=kills.EMAIL_REPLY_DELAY_S if name == "email_kill" else 0.0).start()


def _remove_topics(settings: Settings) -> None:
    try:
        remove_run(settings)
    except (KafkaError, OSError, BrokerUnavailable) as exc:  # the broker is gone already: nothing left to remove
        log.debug("chaos: could not remove the topics of %s: %s", settings.topic_suffix, exc)


def _run(
    name: str, settings: Settings, ledger: Ledger, orders: int, rate: float,
    broker: LocalBroker | None, say: Progress, started: float, *, cluster: LocalCluster | None = None,
    catcher: MailCatcher | None = None,
) -> ScenarioResult:
    topology = load_topology(settings.topology)
    outside = kills.OUT_OF_PROCESS.get(name)
    if outside is not None:  # that role runs as `orderlab run ROLE`, which the scenario starts and kills
        topology = dataclasses.replace(topology, roles=tuple(role for role in topology.roles if role.name != outside))
    lab = Lab(
        settings, rate=0, workers=WORKERS.get(name, DEFAULT_WORKERS), limit=orders, ledger=ledger,
        consumer_config=CHAOS_CONSUMER_CONFIG, topology=topology,
    )
    run = Run(lab, settings, orders, rate, broker=broker, cluster=cluster, catcher=catcher, say=say)
    say(f"{'exactly-once' if settings.exactly_once else 'at-least-once'}, {orders} orders at {rate:g}/s")
    observed: Observed | None = None
    try:
        lab.start()
        try:
            FAULTS[name](run)
            settle(run, timeout=orders / rate + SETTLE_MARGIN_S)
        finally:
            _stop_processes(run)
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
    # the group's lag, also when the role runs as a process of its own outside the lab
    lag_group = {group: load_topology(run.settings.topology).lag_groups(run.settings)[group]}
    orders, ledger = lab.orders, lab.ledger
    if orders is None or ledger is None:
        raise RuntimeError("settle() needs a started lab: it has no order source or ledger yet")

    def done(snapshot: Any) -> bool:
        counters = orders.counters
        if snapshot.placed < run.orders or counters["acknowledged"] + counters["send_errors"] < snapshot.placed:
            return False
        try:
            if lab.lag_of(lag_group).get(group, 1) != 0:
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
        lag = lab.lag_of(lag_group)
    except (KafkaError, OSError) as exc:
        lag = {"error": str(exc)}
    run.problems.append(
        f"not settled within {timeout:.0f} s (placed {last.placed}, acknowledged {orders.counters['acknowledged']}, "
        f"settled {last.settled}, charged {ledger.charge_count(placed)}, e-mailed {ledger.email_count(placed)}, "
        f"analytics saw {last.analytics_orders_seen}, lag {lag}, roles {lab.failures() or 'all running'}"
        + "".join(f"; {child.label} {'running' if child.alive else 'ended'}: {child.tail(3)}" for child in run.processes) + ")"
    )
    return False


def _stop_processes(run: Run) -> None:
    """Stop every process the scenario started (SIGTERM, then SIGKILL of its group); one that failed is a problem."""
    for child in run.processes:
        was_running = child.alive
        code = child.stop()
        if was_running and code not in (0, None):
            run.problems.append(f"{child.label} (pid {child.pid}) exited {code} when stopped: {child.tail(3)}")


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
    mails = run.catcher.messages if run.catcher is not None else lab.emails()
    return Observed(
        placed=placed,
        confirmed=confirmed,
        declined=declined,
        emailed=tuple(mail.order_id for mail in mails if mail.order_id),
        double_charged=ledger.double_charged(placed),
        dead_letters=_dead_letters(s),
        outcome_records_in_log=in_log,
    )


def _dead_letters(settings: Settings) -> tuple[tuple[str | None, str], ...]:
    """(key, reason) of every record in every dead-letter topic of the run (the whole topology's, also of a
    role that ran outside the lab)."""
    topics = load_topology(settings.topology).dead_letter_topics(settings)
    return tuple(
        (letter.key.decode(errors="replace") if letter.key is not None else None, letter.reason)
        for letter in read_dead_letters(settings, topics)
    )


def _result(name: str, run: Run, observed: Observed | None, seconds: float) -> ScenarioResult:
    exactly_once = run.settings.exactly_once
    if observed is None:
        observed = Observed((), (), (), (), 0, ())
        run.problems.append("could not reconcile: the topics were not read")
    figures = count(observed, run.bad)
    why = failures(figures, exactly_once=exactly_once, problems=run.problems, emailed_twice_allowed=run.emailed_twice_allowed)
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


def run_demo_kill(settings: Settings, ledger: Ledger, catcher: MailCatcher | None, orders: int, rate: float,
                  say: Progress, started: float) -> ScenarioResult:
    """``orderlab demo`` is SIGKILLed with its children (its process group) mid-run, then run again on the same
    topics and ledger; reconciled over both runs: every order either run put into order_details.

    No lab here: the demo is the pipeline. Both runs use the scenario's
    topic suffix (so the second continues the first's topics and groups and
    the demo leaves them for the reconciliation), ledger and catcher.
    """
    run = Run(Lab(settings), settings, orders, rate, catcher=catcher, say=say)  # the lab is never started
    args = ["demo", "--orders", str(orders), "--rate", f"{rate:g}", "--timeout", f"{orders / rate + SETTLE_MARGIN_S:g}"]
    if settings.exactly_once:
        args.append("--exactly-once")
    observed: Observed | None = None
    try:
        first = ChildProcess(args, settings, label="orderlab demo (first run)")
        run.processes.append(first)
        kill_at = max(1, orders // DEMO_KILL_AT)
        deadline = time.monotonic() + kills.ROLE_START_WAIT_S + orders / rate
        while ledger.charge_count() < kill_at and first.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        charged = ledger.charge_count()
        if charged < kill_at:
            run.problems.append(f"the first demo charged {charged} orders, not {kill_at}, before the kill: {first.tail(3)}")
        first.kill_group()
        in_topic = len(read_keys_by_position(settings, settings.order_details_topic))
        say(f"orderlab demo SIGKILLed with its process group after {charged} charges ({in_topic} orders in order_details)")
        second = ChildProcess([*args, "--json"], settings, label="orderlab demo (second run)")
        run.processes.append(second)
        code = second.wait(orders / rate + SETTLE_MARGIN_S + kills.ROLE_START_WAIT_S)
        own = _demo_report(second.output())
        if code is None:
            run.problems.append(f"the second demo did not end in time: {second.tail(3)}")
        elif own is None:
            run.problems.append(f"the second demo (exit {code}) printed no report: {second.tail(3)}")
        elif own.get("lost") or own.get("timed_out"):
            # its exit code also counts e-mails the first run's kill left to be sent again (within
            # RESEND_WINDOW): those are counted here, over both runs, not held against it
            run.problems.append(f"the second demo lost {own.get('lost')} of its orders (timed out: {own.get('timed_out')})")
        run.extra.update(charged_before_kill=charged, orders_in_topic_at_kill=in_topic, second_demo_exit=code,
                         second_demo_orders=own.get("orders_placed") if own else None,
                         second_demo_duplicate_confirmations=own.get("duplicate_confirmations") if own else None,
                         second_demo_emailed_twice=own.get("duplicate_emails") if own else None)
        run.emailed_twice_allowed = kills.RESEND_WINDOW
        run.notes.append(
            f"orderlab demo SIGKILLed with its process group after {charged} charges ({in_topic} orders in order_details), "
            f"then run again on the same topics and ledger (exit {code}"
            + (f": its own report found {own.get('duplicate_emails')} e-mailed twice" if own and code else "")
            + "); reconciled over both runs"
        )
        _stop_processes(run)
        placed = tuple(dict.fromkeys(read_keys_by_position(settings, settings.order_details_topic).values()))
        observed = Observed(
            placed=placed,
            confirmed=tuple(read_keys_by_position(settings, settings.order_confirmed_topic).values()),
            declined=tuple(read_keys_by_position(settings, settings.order_declined_topic).values()),
            emailed=tuple(mail.order_id for mail in (catcher.messages if catcher else []) if mail.order_id),
            double_charged=ledger.double_charged(placed),
            dead_letters=_dead_letters(settings),
        )
    except (BrokerUnavailable, SettingsError):
        raise
    except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a failed result, not a traceback
        log.debug("chaos demo_kill failed", exc_info=True)
        run.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        for child in run.processes:
            child.stop()
    return _result("demo_kill", run, observed, time.monotonic() - started)


def _demo_report(output: str) -> dict[str, Any] | None:
    """The JSON report ``orderlab demo --json`` printed last (its log lines may come before it), or None."""
    lines = output.splitlines()
    starts = [n for n, line in enumerate(lines) if line == "{"]
    for start in reversed(starts):
        end = next((n for n in range(start, len(lines)) if lines[n] == "}"), None)
        if end is None:
            continue
        try:
            report = json.loads("\n".join(lines[start:end + 1]))
        except ValueError:
            continue
        return report if isinstance(report, dict) else None
    return None
