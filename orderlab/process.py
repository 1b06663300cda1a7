"""``orderlab run ROLE``: one role as its own process.

Signal handlers live here, in the process's main thread only: SIGTERM or
Ctrl-C asks every worker to stop at once; each finishes the batch in hand,
waits for its output to be acknowledged, commits and closes. The whole drain
is bounded (``drain_timeout_s``, 8 s by default) so that a container runtime's
grace period (10 s in Docker and Compose) is never reached: a process that
could not drain in time says so and exits 1 instead of being killed silently.

While it runs the process logs one line per ``interval_s`` with every
worker's counters, which is what ``docker compose logs`` or ``kubectl logs``
show an operator.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from . import collector
from .clients import check_broker
from .services import PaymentControls, Service, stop_all
from .services.faults import CrashInjection
from .settings import FAULT_HOLD_VARIABLE, Settings
from .topics import ensure_topics
from .topology import load_topology
from .wiring import Wiring

log = logging.getLogger("orderlab.run")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging() -> None:
    """Timestamped INFO lines from orderlab on stderr, whatever the root logger does.

    ``orderlab``'s ``main()`` keeps the root logger at WARNING for the
    one-shot commands; a long-running role needs its own INFO lines (the
    counters), so they get a handler of their own here. Idempotent.
    """
    logger = logging.getLogger("orderlab")
    if not any(getattr(handler, "orderlab_process", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.orderlab_process = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def default_instance() -> str:
    """This process's name among the processes of its role: host name and pid.

    Unique among processes running at the same time, on one machine or many
    (a container's or pod's host name is its own).
    """
    return f"{socket.gethostname()}-{os.getpid()}"


def build_services(role: str, settings: Settings, *, workers: int = 1, rate: float = 0.0,
                   decline_probability: float = 0.1, latency_ms: float = 0.0,
                   instance: str | None = None) -> tuple[list[Service], Wiring]:
    """The services for one role, from its topology, and the wiring that holds what they share (close it after them).

    A role that does not scale runs one worker whatever ``workers`` says;
    an order source (a role that reads no topic) is paced by ``rate``.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    topology = load_topology(settings.topology)
    spec = topology.role(role)
    if not spec.scales and workers > 1:
        # orders: one generator paces the rate; analytics: its frames live in one consumer's memory
        log.warning("%s runs one worker per process; --workers %d ignored (run more processes instead)", role, workers)
        workers = 1
    wiring = Wiring(settings, topology, controls=PaymentControls(decline_probability, latency_ms),
                    instance=instance or default_instance(), catcher_port=settings.smtp_port)
    options: dict[str, Any] = {} if spec.consumes else {"rate": rate}
    try:
        wiring.prepare(role)
        services = [wiring.service(role, worker=n, name=f"{role}-{n}" if spec.scales else role, **options)
                    for n in range(workers)]
    except BaseException:
        wiring.close()
        raise
    return services, wiring


class _StopBeforeStart(Exception):
    """Raised by the signal handler while the process still waits for the broker."""


def run_role(role: str, settings: Settings, *, workers: int = 1, rate: float = 0.0, interval_s: float = 5.0,
             decline_probability: float = 0.1, latency_ms: float = 0.0, drain_timeout_s: float = 8.0,
             instance: str | None = None, hold_before_commit: int | None = None) -> int:
    """Run ``role`` until SIGTERM or SIGINT; returns the process exit code.

    0: stopped on request after a clean drain. 1: a worker failed, or did not
    drain within ``drain_timeout_s``. An unknown role raises
    :class:`~orderlab.topology.TopologyError` before anything connects.
    ``hold_before_commit`` (fault injection, ``ORDERLAB_FAULT_HOLD_BEFORE_COMMIT``):
    each consumer worker holds before committing its first batch of at least
    that many records, until the process is killed (see
    :meth:`~orderlab.services.faults.CrashInjection.hold_before_commit`).
    """
    load_topology(settings.topology).role(role)
    stop_requested = threading.Event()
    waiting_for_broker = True

    def request_stop(signum: int, _frame: Any) -> None:
        if stop_requested.is_set():
            log.info("%s: got %s again; already draining (at most %.0f s)", role, signal.Signals(signum).name, drain_timeout_s)
            return
        log.info("%s: got %s, %s", role, signal.Signals(signum).name, "giving up" if waiting_for_broker else "draining")
        stop_requested.set()
        if waiting_for_broker:
            raise _StopBeforeStart  # nothing to drain yet: leave the broker wait at once

    # Installed before the broker is reached, so a SIGTERM during start-up
    # (a broker that is still coming up) ends the process at once and cleanly.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # `kill -USR1 PID` writes every thread's stack to the log: what a stuck worker is waiting for
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    try:
        try:
            log.info("%s: connecting to %s", role, settings.bootstrap_servers)
            check_broker(settings)
            ensure_topics(settings)
            waiting_for_broker = False
        except _StopBeforeStart:
            log.info("%s: stopped before it started", role)
            return 0
        services, wiring = build_services(role, settings, workers=workers, rate=rate, instance=instance,
                                          decline_probability=decline_probability, latency_ms=latency_ms)
        if hold_before_commit is not None:
            _inject_hold(role, services, hold_before_commit)
        try:
            with collector.roles_running():
                for service in services:
                    service.start()
                    if stop_requested.is_set():
                        break
                if not stop_requested.is_set():
                    log.info("%s: running %d worker(s) against %s (topic suffix %r)", role, len(services),
                             settings.bootstrap_servers, settings.topic_suffix)
                    _watch(role, services, stop_requested, interval_s)
        finally:
            stuck = stop_all(services, drain_timeout_s)
            try:
                wiring.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the exit status
                log.warning("%s: error while closing the ledger or the SMTP catcher: %s", role, exc)
    finally:
        faulthandler.unregister(signal.SIGUSR1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [service for service in services if service.error is not None]
    for service in failed:
        log.error("%s failed: %s", service.name, service.error)
    for service in stuck:
        log.error("%s did not drain within %.0f s: its last batch will be read again by the next consumer",
                  service.name, drain_timeout_s)
    log.info("%s: stopped. %s", role, counter_line(services))
    return 1 if failed or stuck else 0


def _inject_hold(role: str, services: list[Service], min_records: int) -> None:
    held = [service for service in services if isinstance(service, CrashInjection)]
    for service in held:
        service.hold_before_commit(min_records=min_records)
    log.warning("%s: fault injection (%s=%d): %s", role, FAULT_HOLD_VARIABLE, min_records,
                f"each worker holds before committing its first batch of >= {min_records} records, until killed"
                if held else "this role has no consumer worker to hold")


def _watch(role: str, services: list[Service], stop_requested: threading.Event, interval_s: float) -> None:
    """Log counters every ``interval_s`` until a stop request or a worker ends on its own."""
    next_log = time.monotonic() + interval_s
    while not stop_requested.wait(min(0.2, max(0.0, next_log - time.monotonic()))):
        ended = [service for service in services if not service.alive]
        if ended:
            for service in ended:
                log.error("%s ended on its own (%s); stopping the others", service.name,
                          service.error or service.state.value)
            return
        if time.monotonic() >= next_log:
            next_log += interval_s
            log.info("%s", counter_line(services))


def counter_line(services: list[Service]) -> str:
    """``name: counter=value, ...`` per worker (zeros left out), and the
    total when there are several workers. Gauges (the order source's
    ``unacknowledged``) follow the counters."""
    figures = [{**service.counters.snapshot(), **service.gauges()} for service in services]
    parts = [f"{service.name}: {_format(shown)}" for service, shown in zip(services, figures)]
    if len(services) > 1:
        total: dict[str, int] = {}
        for shown in figures:
            for name, value in shown.items():
                total[name] = total.get(name, 0) + value
        parts.append(f"total: {_format(total)}")
    return " | ".join(parts)


def _format(counters: dict[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in counters.items() if value) or "idle"
