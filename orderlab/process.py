"""``orderlab run ROLE``: one role as its own process.

Signal handlers live here, in the process's main thread only: SIGTERM or
Ctrl-C asks the roles to stop; each finishes its batch, commits and closes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from .clients import check_broker
from .ledger import Ledger
from .mailcatcher import MailCatcher
from .services import AnalyticsBackend, EmailNotifier, OrdersBackend, PaymentControls, Service, TransactionsBackend
from .settings import Settings
from .topics import ensure_topics

log = logging.getLogger("orderlab.run")
ROLES = ("orders", "transactions", "email", "analytics")


def build_services(role: str, settings: Settings, *, workers: int = 1, rate: float = 0.0,
                   decline_probability: float = 0.1, latency_ms: float = 0.0) -> tuple[list[Service], list[Any]]:
    """The services for one role, and the resources to close after them."""
    closables: list[Any] = []
    if role == "orders":
        return [OrdersBackend(settings, rate=rate)], closables
    if role == "transactions":
        ledger = Ledger(settings.db_path)
        closables.append(ledger)
        controls = PaymentControls(decline_probability, latency_ms)
        return [TransactionsBackend(settings, ledger, controls=controls, worker=n) for n in range(workers)], closables
    if role == "email":
        ledger = Ledger(settings.db_path)
        closables.append(ledger)
        host, port = settings.smtp_host, settings.smtp_port
        if not host:
            catcher = MailCatcher(port=settings.smtp_port).start()
            closables.append(catcher)
            host, port = catcher.host, catcher.port
            log.info("no ORDERLAB_SMTP_HOST: catching e-mail on %s:%s", host, port)
        return [EmailNotifier(settings, ledger, smtp_host=host, smtp_port=port, name=f"email-{n}") for n in range(workers)], closables
    if role == "analytics":
        return [AnalyticsBackend(settings)], closables
    raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")


def run_role(role: str, settings: Settings, *, workers: int = 1, rate: float = 0.0, interval_s: float = 5.0,
             decline_probability: float = 0.1, latency_ms: float = 0.0, stop_timeout_s: float = 8.0) -> int:
    check_broker(settings)
    ensure_topics(settings)
    services, closables = build_services(role, settings, workers=workers, rate=rate,
                                         decline_probability=decline_probability, latency_ms=latency_ms)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s: got %s, draining", role, signal.Signals(signum).name)
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for service in services:
            service.start()
        log.info("%s: running %d worker(s) against %s", role, len(services), settings.bootstrap_servers)
        last_log = time.monotonic()
        while not stop_requested.wait(0.2):
            if any(service.error is not None for service in services):
                break
            if time.monotonic() - last_log >= interval_s:
                last_log = time.monotonic()
                log.info("%s: %s", role, " | ".join(_counter_line(service) for service in services))
    finally:
        for service in services:
            service.stop(stop_timeout_s)
        for resource in closables:
            (resource.stop if isinstance(resource, MailCatcher) else resource.close)()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [service for service in services if service.error is not None]
    for service in failed:
        log.error("%s failed: %s", service.name, service.error)
    log.info("%s: stopped. %s", role, " | ".join(_counter_line(service) for service in services))
    return 1 if failed else 0


def _counter_line(service: Service) -> str:
    counters = service.counters.snapshot()
    shown = ", ".join(f"{name}={value}" for name, value in counters.items() if value)
    return f"{service.name}: {shown or 'idle'}"
