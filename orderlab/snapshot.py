"""A Lab's counters at one moment: what a dashboard, a lesson or a bench reads.

Every figure is a total over a role's workers, the running and the retired
ones (a worker scaled away, or crashed, still did its work), so figures never
go backwards while a run scales or recovers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .services import Service

if TYPE_CHECKING:
    from .lag import GroupOffsets


@dataclass(frozen=True)
class LabSnapshot:
    """Everything a dashboard shows, taken at one moment.

    The named figures are the seed's (an order placed, settled, e-mailed);
    ``totals`` has every counter of every role, for any topology.
    """

    taken_at: float
    rate: float
    workers: int
    placed: int
    confirmed: int
    declined: int
    emails_sent: int
    # confirmation records the e-mail role has read (a redelivered one is read
    # but not mailed again), to compare with ``confirmed`` records written
    confirmations_read: int
    analytics_orders_seen: int
    dead_lettered: int
    replayed: int
    lag: dict[str, int] = field(default_factory=dict)
    offsets: GroupOffsets = field(default_factory=dict)  # the same reading, per partition of each group
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # each running worker's status, by worker name
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # each role's counters over all its workers
    # the running workers that have lost the broker, by worker name: since when (unix time)
    broker_lost: dict[str, float] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        """Orders with a payment outcome (confirmed or declined)."""
        return self.confirmed + self.declined

    @property
    def broker_unreachable_since(self) -> float | None:
        """When the first worker that has lost the broker missed it (unix time); None while every worker reaches it."""
        return min(self.broker_lost.values()) if self.broker_lost else None


def role_totals(workers_by_role: Mapping[str, Iterable[Service]]) -> dict[str, dict[str, int]]:
    """``{role: {counter: sum over its workers}}``."""
    totals: dict[str, dict[str, int]] = {}
    for role, workers in workers_by_role.items():
        summed: dict[str, int] = {}
        for worker in workers:
            for name, value in worker.counters.snapshot().items():
                summed[name] = summed.get(name, 0) + value
        totals[role] = summed
    return totals


def take_snapshot(*, rate: float, workers: int, running: Iterable[Service], every_worker: Mapping[str, Iterable[Service]],
                  lag: dict[str, int], offsets: GroupOffsets | None = None) -> LabSnapshot:
    """The snapshot of a run whose ``running`` services and all workers by role (``every_worker``) are given."""
    totals = role_totals(every_worker)

    def total(role: str, counter: str) -> int:
        """One counter of one role, 0 if the role or counter is absent."""
        return totals.get(role, {}).get(counter, 0)

    return LabSnapshot(
        taken_at=time.time(),
        rate=rate,
        workers=workers,
        placed=total("orders", "placed"),
        confirmed=total("transactions", "confirmed"),
        declined=total("transactions", "declined"),
        emails_sent=total("email", "sent"),
        confirmations_read=total("email", "consumed"),
        analytics_orders_seen=total("analytics", "orders_seen"),
        dead_lettered=sum(counters.get("dead_lettered", 0) + counters.get("rejected", 0) for counters in totals.values()),
        replayed=total("transactions", "replayed"),
        lag=lag,
        offsets=dict(offsets or {}),
        roles={service.name: service.status() for service in running},
        totals=totals,
        broker_lost={service.name: since for service in running if (since := service.outage.since) is not None},
    )
