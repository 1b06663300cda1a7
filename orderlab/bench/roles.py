"""Each role alone: what one order costs it in CPU, and how fast it goes by itself.

The pipeline runs the four roles as threads of one process, which share one
GIL: however the work is spread, the process cannot finish orders faster
than one core can pay for all four roles' work on them. Here each role runs
by itself over orders already waiting on its input topic (the generator
first, then the transactions role over its output, and so on), and the
process's CPU time is read around it. Put next to the ceiling's CPU for the
same Kafka work, these say where an order's time goes.

The clock starts once a role has its first record (the group join is left
out, as in the ceiling and the pipeline). The e-mail role's SMTP
conversation and the mail catcher run in helper processes of their own;
their CPU is not in its figure, only the time waiting for them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .. import collector
from ..services import Service
from ..settings import Settings
from ..topics import ensure_topics
from ..wiring import Wiring
from .cpuclock import CpuClock, per_order_us
from .pipeline import UNTHROTTLED


@dataclass(frozen=True)
class RoleCost:
    """One role alone over ``orders`` orders: wall time, this process's CPU time (all threads) and the machine's."""

    role: str
    orders: int
    seconds: float
    cpu_s: float
    finished: bool = True
    machine_cpu_s: float | None = None  # the e-mail role's SMTP relay and catcher are other processes

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_us_per_order(self) -> float:
        return per_order_us(self.cpu_s, self.orders)

    @property
    def machine_cpu_us_per_order(self) -> float:
        return per_order_us(self.machine_cpu_s, self.orders)


def _timed(role: str, service: Service, handled: Callable[[], int], target: int, per_order: int,
           timeout_s: float, begin: Callable[[], None] | None = None) -> RoleCost:
    """Start ``service``; time it from its first record until ``handled()`` reaches ``target``.

    ``per_order`` is how many of the counted records make one order (the
    analytics role reads an order and its outcome).
    """
    deadline = time.monotonic() + timeout_s
    service.start()
    try:
        if begin is not None:
            begin()
        while target > 0 and handled() == 0 and time.monotonic() < deadline and service.error is None:
            time.sleep(0.002)
        first, started, cpu = handled(), time.monotonic(), CpuClock()
        while handled() < target and time.monotonic() < deadline and service.error is None:
            time.sleep(0.01)
        done, seconds, spent = handled(), time.monotonic() - started, cpu.read()
    finally:
        service.stop()
    if service.error is not None:
        raise RuntimeError(f"the {role} role failed while measured alone: {service.error}") from service.error
    return RoleCost(role, (done - first) // per_order, seconds, spent.process_s, finished=done >= target, machine_cpu_s=spent.machine_s)


@collector.roles_running()
def measure_roles(settings: Settings, orders: int, *, timeout_s: float = 120.0,
                  progress: Callable[[float], None] | None = None) -> tuple[RoleCost, ...]:
    """The four roles one after another, each alone, over ``orders`` orders on topics of ``settings``
    (with the garbage collector set as for the Lab, see :mod:`orderlab.collector`)."""
    ensure_topics(settings)
    report = progress or (lambda fraction: None)
    costs: list[RoleCost] = []

    wiring = Wiring(settings)  # the ledger and the SMTP catcher, as the Lab makes them
    try:
        generator = wiring.service("orders", rate=0, limit=orders)
        costs.append(_timed("orders", generator, lambda: generator.counters["acknowledged"], orders, 1, timeout_s,
                            begin=lambda: generator.set_rate(UNTHROTTLED)))
        report(0.25)
        payments = wiring.service("transactions")
        costs.append(_timed("transactions", payments, lambda: payments.counters["consumed"], orders, 1, timeout_s))
        report(0.5)
        mailer = wiring.service("email")
        confirmed = payments.counters["confirmed"]
        costs.append(_timed("email", mailer, lambda: mailer.counters["sent"], confirmed, 1, timeout_s))
        report(0.75)
        analytics = wiring.service("analytics")
        costs.append(_timed("analytics", analytics, lambda: analytics.counters["consumed"], 2 * orders, 2, timeout_s))
        report(1.0)
    finally:
        wiring.close()
    return tuple(costs)
