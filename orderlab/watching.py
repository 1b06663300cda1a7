"""Reading a running Lab: snapshots, bounded waits, and the accounting at the end.

A mixin of :class:`~orderlab.lab.Lab`, kept apart from the orchestration:
nothing here starts, stops or changes a role. It reads the Lab's pools, its
topology and its lag meter (declared below).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .dlq import DeadLetter
from .lag import LagMeter, group_lag
from .ledger import Ledger
from .mail import MailCatcher
from .pool import WorkerPool
from .reconcile import Reconciliation, read_dead_letters, reconcile_run
from .services import Service
from .settings import Settings
from .snapshot import LabSnapshot, take_snapshot
from .topology import Topology


class LabWatching:
    """Snapshots, waits and reconciliation over a Lab's pools."""

    settings: Settings
    topology: Topology
    pools: dict[str, WorkerPool]
    scaled_role: str
    catcher: MailCatcher | None
    ledger: Ledger | None
    _lag: LagMeter
    _lock: threading.RLock

    # provided by the Lab
    running: bool
    rate: float

    def service(self, role: str) -> Any:
        """The first running worker of ``role``; after a stop, the last one that ran; else None."""
        pool = self.pools.get(role)
        if pool is None:
            return None
        return pool.workers[0] if pool.workers else (pool.retired[-1] if pool.retired else None)

    orders = property(lambda self: self.service("orders"), doc="The order source (see :meth:`service`).")
    email = property(lambda self: self.service("email"), doc="The e-mail role (see :meth:`service`).")
    analytics = property(lambda self: self.service("analytics"), doc="The analytics role (see :meth:`service`).")

    @property
    def workers(self) -> list[Any]:
        """The scaled role's running workers (the transactions workers)."""
        pool = self.pools.get(self.scaled_role)
        return list(pool.workers) if pool is not None else []

    def _running_services(self) -> list[Service]:
        """Every running worker: the single roles in topology order, then the scaled role's workers."""
        pools = dict(self.pools)
        single = [w for name in self.topology.role_names if name != self.scaled_role and name in pools
                  for w in pools[name].workers]
        return single + (list(pools[self.scaled_role].workers) if self.scaled_role in pools else [])

    def snapshot(self, *, with_lag: bool = True) -> LabSnapshot:
        """Every counter now (totals per role over running and retired workers), and the consumer lag (per group,
        and per partition in ``offsets``) unless with_lag is False."""
        with self._lock:
            running = self._running_services()
            every = {name: pool.every_worker for name, pool in self.pools.items()}
        offsets = self._lag.offsets(self.topology.lag_groups(self.settings)) if with_lag and self.running else {}
        return take_snapshot(rate=self.rate, workers=len(self.workers), running=running, every_worker=every,
                             lag=group_lag(offsets), offsets=offsets)

    def lag_of(self, groups: dict[str, tuple[str, ...]]) -> dict[str, int]:
        """The lag of ``groups`` ({group id: the topics it reads}), this lab's or not: a role run as a
        process of its own (``orderlab chaos``'s hard kills) commits into the same groups."""
        return group_lag(self._lag.offsets(groups))

    def failures(self) -> dict[str, str]:
        """Roles whose thread ended with an error, and the error."""
        return {s.name: str(s.error) for s in self._running_services() if s.error is not None}

    def wait_until(self, condition: Callable[[LabSnapshot], bool], timeout: float, *, poll_s: float = 0.2,
                   progress: Callable[[LabSnapshot], None] | None = None) -> LabSnapshot:
        """Wait (bounded) until ``condition(snapshot)`` holds; returns the last snapshot.

        Raises ``RuntimeError`` at once if a role failed, rather than waiting out the bound.
        """
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.snapshot(with_lag=False)
            if progress is not None:
                progress(snapshot)
            if condition(snapshot):
                return snapshot
            failed = self.failures()
            if failed:
                raise RuntimeError("; ".join(f"{name} failed: {error}" for name, error in failed.items()))
            if time.monotonic() >= deadline:
                return snapshot
            time.sleep(poll_s)

    def groups_settled(self) -> bool:
        """Whether every consumer group has given partitions to every member that can have some
        (see :meth:`WorkerPool.holds_all`)."""
        with self._lock:
            pools = dict(self.pools)
        return all(
            pool.holds_all(sum(self.topology.topic(read.topic).partition_count(self.settings) for read in spec.reads))
            for spec in self.topology.consumers() if (pool := pools.get(spec.name)) is not None
        )

    def wait_for_orders(self, count: int, timeout: float = 30.0, **kwargs: Any) -> LabSnapshot:
        """Wait until ``count`` orders are placed, settled, e-mailed (if confirmed) and seen by analytics."""
        return self.wait_until(
            lambda s: s.placed >= count and s.settled >= count and s.confirmations_read >= s.confirmed
            and s.analytics_orders_seen >= count,
            timeout,
            **kwargs,
        )

    def emails(self) -> list[Any]:
        """What the embedded SMTP catcher received (empty with an external SMTP server)."""
        return self.catcher.messages if self.catcher is not None else []

    def email_latencies(self) -> list[tuple[float, float]]:
        """(order created_at, e-mail sent_at) of recent e-mails, for the latency chart."""
        return self.email.latencies() if self.email is not None else []

    def dead_letters(self) -> list[DeadLetter]:
        """Every record of every dead-letter topic of this run, parsed."""
        return read_dead_letters(self.settings, self.topology.dead_letter_topics(self.settings))

    def reconcile(self) -> Reconciliation:
        """Read the topics and account for every order this lab placed."""
        if self.catcher is not None and not self.catcher.forgotten():
            emailed = [mail.order_id for mail in self.emails() if mail.order_id]
        elif self.ledger is not None:  # an external SMTP server, or a catcher past its KEEP: the ledger knows what was sent
            emailed = self.ledger.emailed_ids()
        else:
            raise RuntimeError("the lab has no ledger and no catcher yet: start it first")
        return reconcile_run(
            self.settings, placed=self.orders.placed_ids if self.orders is not None else None, emailed=emailed,
            analytics_seen=self.analytics.orders_seen if self.analytics is not None else 0,
            dead_letter_topics=self.topology.dead_letter_topics(self.settings),
        )

