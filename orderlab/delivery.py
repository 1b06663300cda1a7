"""The three delivery guarantees, measured on the same crash (lesson 08).

- **at-most-once**: a worker that commits a batch's offsets *before* it
  processes the batch (:class:`CommitFirstTransactions`). A crash after the
  commit loses the rest of the batch; nothing is ever done twice. It exists
  only here, for the comparison: no role of the shop runs like this. Its
  topology is :data:`AT_MOST_ONCE_TOPOLOGY` (the seed, with this worker as
  the transactions role).
- **at-least-once**: the shop's Transactions Backend as it runs by default
  (commit after the work): a crash means the batch is read again.
- **exactly-once**: the same role with ``exactly_once`` on (one Kafka
  transaction per batch for the outcomes and the offsets).

:func:`crash_in_mode` runs the chaos ``worker_crash`` scenario in one of the
modes (the same fault injection, :meth:`~orderlab.lab.Lab.crash_worker`, for
all three), and :func:`delivery_table` puts the results side by side.
:func:`outcome_records` counts the outcome records as a ``read_committed`` or
a ``read_uncommitted`` reader sees them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Iterable, Mapping

import pandas as pd
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from .chaos import ScenarioResult, run_scenario
from .chaos.runner import MIN_ORDERS
from .clients import BrokerUnavailable
from .reconcile import read_to_end
from .seed import SEED
from .services import TransactionsBackend
from .services.faults import SimulatedCrash
from .services.records import next_offsets
from .settings import Settings, SettingsError
from .topology import RoleSpec, Topology
from .ui.mode import in_test_mode

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("at-most-once", "at-least-once", "exactly-once")
COMMIT_TIMEOUT_MS = 10_000
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")


class CommitFirstTransactions(TransactionsBackend):
    """The Transactions Backend with the commit moved first: **at-most-once**.

    For each batch it commits the offsets and waits for the broker to
    confirm, then takes the payments and sends the outcomes. A worker that
    dies after the commit leaves the rest of its batch committed and not
    processed: the group never reads those orders again. And nothing is
    done twice: a batch whose processing fails after its commit is not read
    again either (counted in ``lost_after_commit``).

    Crash injection (:meth:`crash`) lands in the middle of the batch: with
    ``after_send`` the first half of the batch is processed and its outcomes
    acknowledged before the worker dies, without it none of the batch is.
    """

    counter_names = ("lost_after_commit",)

    def __init__(self, settings: Settings, spec: RoleSpec, **options: Any) -> None:
        if settings.exactly_once:
            raise SettingsError("the at-most-once worker commits before it processes: it cannot run with "
                                "exactly_once on (ORDERLAB_EXACTLY_ONCE); use the seed's transactions role")
        super().__init__(settings, spec, **options)

    def commit_first(self, offsets: dict[Any, OffsetAndMetadata]) -> None:
        """Commit ``offsets`` and wait for the broker's answer (a refused commit raises: nothing was done yet)."""
        self.consumer.commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)
        self.committer.last.update(offsets)
        self.counters.add("commits")

    def handle(self, raw_records: list[Any]) -> None:
        """Commit the batch, then do it: at-most-once."""
        decoded, futures = self.decode(raw_records)
        self.commit_first(next_offsets(raw_records))  # the batch counts as done before it is done
        crash = self.crash_due(raw_records)
        todo = decoded
        if crash:
            todo = decoded[: len(decoded) // 2] if self.crash_after_send else []
        try:
            if todo:
                futures.extend(self.process(todo))
            self.await_acks(futures)
        except (KafkaError, BrokerUnavailable) as exc:
            # committed already: reading the batch again could do some of it twice
            self.counters.add("lost_after_commit", len(decoded))
            log.warning("%s: a committed batch of %d orders failed (%s: %s); at-most-once: it is not read again",
                        self.name, len(decoded), type(exc).__name__, exc)
        if crash:
            raise SimulatedCrash
        self.counters.add("consumed", len(raw_records))


def _with_commit_first(role: RoleSpec) -> RoleSpec:
    return replace(role, cls=CommitFirstTransactions,
                   summary="takes payment after committing the batch (at-most-once; lesson 08 only)")


AT_MOST_ONCE = Topology(
    name="at_most_once",
    topics=SEED.topics,
    roles=tuple(_with_commit_first(role) if role.name == "transactions" else role for role in SEED.roles),
)
# how settings name it (ORDERLAB_TOPOLOGY, Settings.topology)
AT_MOST_ONCE_TOPOLOGY = f"{__name__}:AT_MOST_ONCE"


def mode_settings(mode: str, settings: Settings) -> Settings:
    """``settings`` for a run in ``mode`` (one of :data:`MODES`): its topology and its ``exactly_once``."""
    if mode not in MODES:
        raise ValueError(f"unknown delivery mode {mode!r}; choose one of {', '.join(MODES)}")
    return settings.with_(
        exactly_once=mode == "exactly-once",
        topology=AT_MOST_ONCE_TOPOLOGY if mode == "at-most-once" else settings.topology,
    )


def crash_in_mode(mode: str, *, orders: int = 300, rate: float = 150.0, settings: Settings | None = None,
                  broker: Any = None, progress: Any = None) -> ScenarioResult:
    """The ``worker_crash`` scenario (see :mod:`orderlab.chaos`) in delivery mode ``mode``, reconciled.

    Each run has topics and a ledger of its own (``settings`` gives the
    broker and client options; with ``broker``, a LocalBroker, the run uses
    that one). Under test mode it places half the orders (at least
    :data:`~orderlab.chaos.runner.MIN_ORDERS`). An at-most-once run does not
    pass the scenario: it loses orders, which is what it shows.
    """
    base = mode_settings(mode, (settings or Settings.from_env()).with_(db_url=""))  # a ledger of the run's own
    count = max(MIN_ORDERS, orders // 2) if in_test_mode() else orders
    return run_scenario("worker_crash", orders=count, rate=rate, exactly_once=base.exactly_once, settings=base,
                        broker=broker, progress=progress)


def delivery_table(results: Mapping[str, ScenarioResult]) -> pd.DataFrame:
    """``{mode: result}`` as one row per mode: orders, lost, duplicated (outcome records beyond the first per order)."""
    return pd.DataFrame(
        [{"mode": mode, "orders": r.orders, "lost": r.lost, "duplicated": r.duplicates_in_output,
          "charged twice": r.double_charged} for mode, r in results.items()],
        columns=["mode", "orders", "lost", "duplicated", "charged twice"],
    ).set_index("mode")


def outcome_records(settings: Settings, isolation_level: str, topics: Iterable[str] | None = None) -> int:
    """How many records the run's ``order_confirmed`` and ``order_declined`` (or ``topics``) hold, as a reader in
    ``isolation_level`` sees them: ``read_uncommitted`` counts the records of aborted transactions too."""
    if isolation_level not in ISOLATION_LEVELS:
        raise ValueError(f"isolation_level is one of {', '.join(ISOLATION_LEVELS)}, got {isolation_level!r}")
    reader = settings.with_(exactly_once=isolation_level == "read_committed")  # make_consumer picks the level from it
    chosen = (settings.order_confirmed_topic, settings.order_declined_topic) if topics is None else tuple(topics)
    return sum(len(read_to_end(reader, topic)) for topic in chosen)
