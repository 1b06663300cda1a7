"""Event-sourcing replay: a second copy of a consumer role, in a group of its own, rebuilds its state from the log.

The topics are the record of what happened; a role's state (the analytics
role's aggregates) is only a reading of them. A new consumer group starts
from the earliest offset (``auto_offset_reset="earliest"``: it has no
committed offsets yet), reads everything again, and ends up with the same
numbers as the group that read it live: that is a **replay**.

:class:`Replay` declares the copy as a role of its own (a
:class:`~orderlab.topology.RoleSpec` with another name, hence another
group) and builds it with :class:`~orderlab.wiring.Wiring`, as the Lab builds
its roles; :func:`aggregates_of` and :func:`compare_aggregates` put the live
and the replayed numbers side by side; :func:`records_since` counts what a
group reset to a timestamp reads again.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pandas as pd
from kafka import TopicPartition

from . import aggregates
from .clients import make_consumer
from .lag import LagMeter
from .settings import Settings
from .topology import RoleSpec, Topology, load_topology
from .wiring import Wiring

REPLAY_ROLE = "analytics_replay"


def replay_spec(topology: Topology, source: str = "analytics", name: str = REPLAY_ROLE) -> RoleSpec:
    """``source``'s declaration under another name: the same class and topics, a consumer group of its own."""
    return replace(topology.role(source), name=name, summary=f"{source} again, in a group of its own, from the earliest offset")


class Replay:
    """A copy of ``source`` (the analytics role) under the role name ``name``, started on demand.

    Each :meth:`start` builds a fresh service (a stopped one cannot start
    again) in the same group, so it carries on from the group's committed
    offsets: from the earliest offset the first time, from wherever the
    offsets were moved to after that.
    """

    def __init__(self, settings: Settings, topology: Topology | None = None, *, source: str = "analytics",
                 name: str = REPLAY_ROLE) -> None:
        base = topology or load_topology(settings.topology)
        self.settings = settings
        self.spec = replay_spec(base, source, name)
        self.topology = base.with_role(self.spec, name=f"{base.name}+{name}")
        self.service: Any = None
        self._wiring: Wiring | None = None
        self._lag = LagMeter(settings)

    @property
    def group_id(self) -> str:
        """The copy's consumer group (``orderlab-analytics_replay<suffix>``)."""
        return str(self.spec.group_id(self.settings))

    @property
    def topics(self) -> tuple[str, ...]:
        """The run's topics it reads."""
        return self.spec.ports(self.settings).topics

    def start(self) -> Any:
        """Start a new service for the copy (stopping a running one first); returns it."""
        self.stop()
        self._wiring = Wiring(self.settings, self.topology)
        self.service = self._wiring.service(self.spec.name).start()
        return self.service

    def lag(self) -> int:
        """Records of its topics the group has not committed yet."""
        return self._lag.lag({self.group_id: self.topics})[self.group_id]

    def wait_caught_up(self, timeout_s: float = 60.0, *, poll_s: float = 0.5) -> bool:
        """Wait (bounded) until the group has committed every record of its topics; whether it got there."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.service is not None and self.service.error is not None:
                raise RuntimeError(f"{self.spec.name} failed: {self.service.error}")
            if self.lag() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def stop(self) -> None:
        """Stop the running service (it commits and leaves its group) and close its wiring. Idempotent."""
        if self.service is not None:
            self.service.stop()
        if self._wiring is not None:
            self._wiring.close()
            self._wiring = None

    def close(self) -> None:
        """Stop, and close the lag meter."""
        self.stop()
        self._lag.close()


def aggregates_of(analytics: Any) -> dict[str, Any]:
    """What an analytics role holds, as numbers that do not depend on the order it read the records in."""
    orders, items, outcomes = analytics.frames()
    best = aggregates.top_items(items, 1)
    return {
        "orders": len(orders),
        "order value (sum of totals)": round(float(orders["total_cents"].sum()) / 100.0, 2),
        "items sold": int(items["quantity"].sum()),
        "best seller": str(best.index[0]) if len(best) else "-",
        "mean basket (items)": round(float(aggregates.basket_size(orders)["mean"]), 2),
        "confirmed": int(outcomes["approved"].sum()),
        "declined": int((~outcomes["approved"].astype(bool)).sum()),
        "decline rate": round(aggregates.decline_rate(outcomes), 4),
    }


def compare_aggregates(live: dict[str, Any], replayed: dict[str, Any]) -> pd.DataFrame:
    """One row per aggregate: the live value, the replayed one, and whether they are the same."""
    names = list(dict.fromkeys([*live, *replayed]))
    rows = [{"aggregate": name, "live": live.get(name), "replayed": replayed.get(name),
             "same": live.get(name) == replayed.get(name)} for name in names]
    return pd.DataFrame(rows).set_index("aggregate")


def read_again(analytics: Any, placed_after: float) -> pd.DataFrame:
    """The orders an analytics role read, by creation time, each marked whether it was created after ``placed_after``."""
    orders = analytics.frames()[0].sort_values(["created_at", "order_id"]).reset_index(drop=True)
    return pd.DataFrame({
        "order_id": orders["order_id"],
        "created": pd.to_datetime(orders["created_at"], unit="s").dt.strftime("%H:%M:%S.%f").str[:-3],
        "after the cutoff": orders["created_at"] >= placed_after,
    })


def records_since(settings: Settings, topics: tuple[str, ...] | list[str], timestamp_ms: int,
                  timeout_s: float = 30.0) -> int:
    """How many records of ``topics`` have a timestamp at or after ``timestamp_ms``: what a group whose offsets
    were reset to that time reads again (per partition, from the first such record to the end)."""
    consumer = make_consumer(settings, None)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or ())]
        found = consumer.offsets_for_times({tp: timestamp_ms for tp in partitions}, timeout_ms=int(timeout_s * 1000))
        ends = consumer.end_offsets(partitions, timeout_ms=int(timeout_s * 1000))
        return sum(ends[tp] - (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in partitions)
    finally:
        consumer.close(autocommit=False)
