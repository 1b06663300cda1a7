"""Lesson 09's moving parts: a private cluster, a leader killed while orders flow, the node's return, acks compared.

- :class:`SpareCluster`: a three-node cluster of the lesson's own (temporary
  folder, free ports), started in the background so the lesson can explain
  while the JVMs come up, stopped and removed at the end;
- :data:`TIMED_ORDERS`: the seed's roles with an Orders Backend that notes
  when each partition acknowledged an order (:class:`AckTimedOrders`), so a
  lesson can tell how long producing to one partition stalled;
- :func:`partitions_table`: every partition's leader, replicas and in-sync
  replicas as a table that refreshes itself;
- :func:`kill_leader` / :func:`restart_node`: SIGKILL a partition's leader
  with orders flowing and measure the stall; start it again and wait until
  it is back in every in-sync replica set;
- :func:`acks_comparison` / :func:`acks_table`: ``acks=1`` against
  ``acks=all`` over the same leader kill, repeated (fewer kills under test
  mode), as the lesson's table. Unlike ``python -m orderlab.replication``,
  which kills once per setting, both settings meet each kill together
  (:func:`paired_kill`): the same crash for both, and half the node
  restarts, which are what a kill costs on a busy machine.
"""

from __future__ import annotations

import atexit
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .broker.cluster import LocalCluster
from .broker.errors import BrokerError
from .broker.metadata import PartitionState
from .replication import (
    ACKS_SETTINGS,
    FailoverResult,
    PartitionSender,
    acks_summary,
    longest_stall,
    partitions_frame,
    read_partition,
)
from .seed import SEED
from .services.orders import OrdersBackend
from .settings import in_test_mode
from .topology import Topology
from .ui.livetable import LiveTable

CLUSTER_START_TIMEOUT_S = 180.0  # measured 14-36 s on a loaded 2-core machine; a first jar fetch takes longer
ACK_TIMES_KEPT = 100_000  # per partition: hours of a lesson's order rate


class SpareCluster:
    """A private three-node Kafka cluster (temporary folder, free ports) that a lesson may kill nodes of.

    ``start()`` returns at once and the three JVMs start in a background
    thread; ``wait()`` returns the running :class:`LocalCluster` (bounded);
    ``stop()`` stops every node (SIGKILL after a bound) and removes the
    folder, and runs by itself when the Python process exits (a kernel shut
    down before the lesson's last cell). The class's shared broker is never
    touched.
    """

    def __init__(self, brokers: int = 3, heap_mb: int | None = None) -> None:
        self.brokers = brokers
        self.heap_mb = heap_mb
        self.cluster: LocalCluster | None = None
        self.error: BaseException | None = None
        self.started_in_s: float | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = CLUSTER_START_TIMEOUT_S) -> "SpareCluster":
        """Begin starting the nodes in the background (idempotent)."""
        if self._thread is not None:
            return self
        from .broker import ensure_jars
        from .broker.procs import free_consecutive_ports

        self._folder = tempfile.TemporaryDirectory(prefix="orderlab-spare-cluster-")
        options = {} if self.heap_mb is None else {"heap_mb": self.heap_mb}
        self.cluster = LocalCluster(Path(self._folder.name), free_consecutive_ports(self.brokers), self.brokers, **options)
        cluster = self.cluster

        def launch() -> None:
            began = time.monotonic()
            try:
                ensure_jars(quiet=True)  # a first fetch must not print into whichever cell runs
                cluster.start(timeout=timeout)
                self.started_in_s = time.monotonic() - began
            except BaseException as exc:  # noqa: BLE001 - kept for wait(), never printed
                self.error = exc

        self._thread = threading.Thread(target=launch, name="orderlab-spare-cluster", daemon=True)
        self._thread.start()
        # The nodes are processes of their own: a kernel shut down before the lesson's last cell must not leave
        # three JVMs (700 MB) behind.
        atexit.register(self.stop)
        return self

    def wait(self, timeout: float = CLUSTER_START_TIMEOUT_S) -> LocalCluster:
        """The running cluster, once every node answers (raises if it could not start in time)."""
        if self._thread is None:
            self.start()
        thread, cluster = self._thread, self.cluster
        if thread is None or cluster is None:
            raise RuntimeError("the spare cluster's start thread did not begin")
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the spare cluster did not start within {timeout:.0f} s")
        if self.error is not None:
            raise RuntimeError(f"the spare cluster could not start: {self.error}")
        return cluster

    def stop(self) -> list[int]:
        """Stop every node (SIGKILL after 15 s) and remove the folder; the ids of the nodes that ran. Idempotent."""
        stopped: list[int] = []
        atexit.unregister(self.stop)
        if self._thread is not None:
            self._thread.join(CLUSTER_START_TIMEOUT_S)
        if self.cluster is not None:
            stopped = self.cluster.stop()
        self.cluster = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._thread = None
        return stopped


# -- orders whose acknowledgements are timed per partition ---------------------------------


class AckTimedOrders(OrdersBackend):
    """The Orders Backend, noting when each partition acknowledged an order (``time.monotonic()``).

    The acknowledgement callbacks run in the producer's I/O thread; readers
    take a copy under the lock.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ack_lock = threading.Lock()
        self._ack_times: dict[int, deque[float]] = {}

    def _acked(self, metadata: Any) -> None:
        super()._acked(metadata)
        now = time.monotonic()
        with self._ack_lock:
            self._ack_times.setdefault(int(metadata.partition), deque(maxlen=ACK_TIMES_KEPT)).append(now)

    def ack_times(self, partition: int) -> list[float]:
        """When ``partition`` acknowledged each order so far (oldest first)."""
        with self._ack_lock:
            return list(self._ack_times.get(partition, ()))


TIMED_ORDERS: Topology = replace(
    SEED,
    name="seed+timed-acks",
    roles=tuple(replace(role, cls=AckTimedOrders) if role.name == "orders" else role for role in SEED.roles),
)


# -- the live table ---------------------------------------------------------------------------


def partition_rows(states: list[PartitionState]) -> pd.DataFrame:
    """One row per partition, by partition number: leader, replicas (the first is the preferred leader), ISR, offline."""
    frame = partitions_frame(states).set_index("partition").sort_index()
    return frame[["leader", "replicas", "isr", "offline"]]


def partitions_table(cluster: LocalCluster, topic: str, *, interval_s: float = 1.0) -> LiveTable:
    """A live table of ``topic``'s partitions on ``cluster``, read about every ``interval_s`` (not started).

    Keeps one admin connection open while it runs, closed by ``stop()``.
    """
    metadata = cluster.metadata(timeout=5.0)

    def read() -> tuple[pd.DataFrame, str]:
        states = metadata.partitions(topic)
        up = metadata.brokers()
        down = sorted(set(range(1, cluster.brokers + 1)) - set(up))
        nodes = f"nodes up: {', '.join(map(str, up))}" + (f" · down: {', '.join(map(str, down))}" if down else "")
        return partition_rows(states), nodes

    return LiveTable(
        read,
        title=f"{topic}: leader, replicas and in-sync replicas (isr) of every partition",
        interval_s=interval_s,
        on_stop=metadata.close,
        placeholder=f"{topic}: a live table of leaders, replicas and in-sync replicas (run the notebook to watch it)",
    )


# -- a leader killed while orders flow, and its return --------------------------------------------


@dataclass(frozen=True)
class LeaderKill:
    """One SIGKILL of a partition's leader while orders flowed, measured. Times in seconds."""

    topic: str
    partition: int
    killed: int  # the node that led the partition
    new_leader: int
    election_s: float  # from the kill until the metadata named another leader
    stall_s: float  # the longest time the partition acknowledged no order, from the last one before the kill
    acked_during_kill: int  # orders the partition acknowledged between the kill and the measurement's end


@dataclass(frozen=True)
class Rejoin:
    """A killed node started again: how long until it answered, and until it was in every ISR of the topic."""

    node: int
    restart_s: float
    rejoin_s: float  # from the restart until it was in the ISR of every partition of the topic
    leads: tuple[int, ...]  # the topic's partitions it leads right after rejoining


def _wait_for(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or BrokerError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BrokerError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(poll_s)


def _timed_orders(lab: Any) -> AckTimedOrders:
    orders = lab.orders
    if not isinstance(orders, AckTimedOrders) or not lab.running:
        raise RuntimeError("kill_leader needs a running lab whose orders are timed: lesson_lab(..., topology=TIMED_ORDERS)")
    return orders


def kill_leader(cluster: LocalCluster, lab: Any, partition: int = 0, *, settle_s: float = 1.0,
                timeout_s: float = 60.0) -> LeaderKill:
    """SIGKILL the node that leads ``partition`` of the lab's ``order_details`` while the lab places orders.

    Waits (bounded) until another node leads the partition and the partition
    acknowledges orders again, then ``settle_s`` more, and measures the stall
    from the orders' acknowledgement times. The node stays down:
    :func:`restart_node` brings it back.
    """
    orders = _timed_orders(lab)
    topic = lab.settings.order_details_topic
    if lab.rate <= 0:
        raise RuntimeError("no orders are flowing: lab.set_rate(30) first, or the stall cannot be measured")
    with cluster.metadata(timeout_s) as metadata:
        if partition not in {s.partition for s in metadata.partitions(topic)}:
            raise BrokerError(f"topic {topic} has no partition {partition}")

        def ready() -> PartitionState | None:
            # a node restarted a moment ago may still be catching up (on a busy machine, a node whose
            # heartbeats came late may have been fenced for a moment): kill only from a full ISR
            state = {s.partition: s for s in metadata.partitions(topic)}[partition]
            return state if state.leader is not None and not state.under_replicated else None

        state = _wait_for(ready, timeout_s, f"{topic}[{partition}] having a leader and every replica in sync")
        _wait_for(lambda: orders.ack_times(partition), timeout_s, f"a first acknowledged order on partition {partition}")
        leader = int(state.leader)
        killed_at = time.monotonic()
        cluster.kill(leader)

        def another_leader() -> int | None:
            try:
                now = metadata.leader(topic, partition)
            except BrokerError:
                return None
            return now if now not in (None, leader) else None

        new_leader = int(_wait_for(another_leader, timeout_s, f"a new leader for {topic}[{partition}]"))
        election_s = time.monotonic() - killed_at
    _wait_for(lambda: orders.ack_times(partition)[-1] > killed_at, timeout_s,
              f"partition {partition} acknowledging orders again")
    time.sleep(settle_s)
    times = orders.ack_times(partition)
    return LeaderKill(
        topic=topic,
        partition=partition,
        killed=leader,
        new_leader=new_leader,
        election_s=election_s,
        stall_s=longest_stall(times, killed_at),
        acked_during_kill=sum(1 for t in times if t > killed_at),
    )


def restart_node(cluster: LocalCluster, node: int, topic: str, *, timeout_s: float = 120.0) -> Rejoin:
    """Start ``node`` again on its data; return once it is in the ISR of every partition of ``topic`` (bounded)."""
    began = time.monotonic()
    cluster.restart(node, timeout=timeout_s)
    restart_s = time.monotonic() - began
    with cluster.metadata(timeout_s) as metadata:

        def back_everywhere() -> list[PartitionState] | None:
            try:
                states = metadata.partitions(topic)
            except BrokerError:
                return None
            return states if all(node in state.isr for state in states if node in state.replicas) else None

        states = _wait_for(back_everywhere, timeout_s, f"node {node} rejoining every in-sync replica set of {topic}")
    return Rejoin(
        node=node,
        restart_s=restart_s,
        rejoin_s=time.monotonic() - began,
        leads=tuple(state.partition for state in states if state.leader == node),
    )


def replication_of(cluster: LocalCluster, topic: str) -> tuple[int, int]:
    """``(replication factor, min.insync.replicas)`` of ``topic``, as the cluster has them now."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    states = cluster.describe(topic)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-failover-configs")
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    finally:
        admin.close()
    entry = described["topic"][topic]["min.insync.replicas"]
    value = entry["value"] if isinstance(entry, dict) else entry
    return max(len(state.replicas) for state in states), int(value)


def elect_preferred_leaders(cluster: LocalCluster, topic: str, *, timeout_s: float = 30.0) -> pd.DataFrame:
    """Ask the controller for a preferred leader election on every partition of ``topic`` now (instead of
    at the next automatic leader rebalance); returns the partitions once each is led by its first replica."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-failover-election")
    try:
        admin.elect_leaders(0, [topic], timeout_ms=int(timeout_s * 1000))  # 0: preferred (1 would be unclean)
    finally:
        admin.close()

    def preferred_everywhere() -> list[PartitionState] | None:
        states = cluster.describe(topic)
        return states if all(state.leader == state.replicas[0] for state in states) else None

    return partition_rows(_wait_for(preferred_everywhere, timeout_s, f"every partition of {topic} led by its preferred replica"))


# -- acks=1 against acks=all ----------------------------------------------------------------------

SETTING_LABELS = {
    "1": "acks=1 (the leader alone confirms)",
    "all": "acks=all (every in-sync replica confirms)",
}
SETTING_HEADING = "producer setting (RF 3, min.insync.replicas=2)"


def kills_for_this_run(kills: int) -> int:
    """``kills`` in class; a tenth of them (at least one) under test mode (``ORDERLAB_TEST_MODE``)."""
    if kills < 1:
        raise ValueError(f"kills must be at least 1, got {kills}")
    return max(1, kills // 10) if in_test_mode() else kills


def _create_led_by(cluster: LocalCluster, topics: list[str], leader: int, timeout_s: float) -> None:
    """One-partition topics with three replicas, ``leader`` first (so it leads them); returns when each has
    that leader and a full ISR."""
    from kafka import KafkaAdminClient

    nodes = [leader, *(node for node in range(1, cluster.brokers + 1) if node != leader)][:3]
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-failover-admin")
    try:
        admin.create_topics({topic: {"assignments": {0: nodes}} for topic in topics}, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()
    with cluster.metadata(timeout_s) as metadata:

        def ready() -> bool:
            try:
                states = [metadata.partitions(topic)[0] for topic in topics]
            except BrokerError:
                return False
            return all(state.leader == leader and not state.under_replicated for state in states)

        _wait_for(ready, timeout_s, f"topics {', '.join(topics)} led by node {leader} with every replica in sync")


def _delete_topics(cluster: LocalCluster, topics: list[str]) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-failover-admin")
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


def paired_kill(cluster: LocalCluster, leader: int, *, rate: float = 1000.0, warmup_s: float = 2.0,
                after_s: float = 2.0, timeout_s: float = 120.0) -> list[FailoverResult]:
    """One SIGKILL of ``leader`` while two producers write to a partition it leads, one with ``acks=1`` and
    one with ``acks=all``: both settings meet the very same crash.

    Each producer has a one-partition topic of its own (three replicas,
    ``leader`` first). Producing runs ``warmup_s`` before the kill and
    ``after_s`` after both partitions have a new leader; the node is then
    restarted and, once it is back in both ISRs, both partitions are read
    back to count acknowledged records that are missing. Every wait is
    bounded; the node is restarted and the topics deleted even when a
    measurement fails.
    """
    run_id = uuid.uuid4().hex[:8]
    topics = {acks: f"acks-{acks}-{run_id}" for acks in ACKS_SETTINGS}
    _create_led_by(cluster, list(topics.values()), leader, timeout_s)
    try:
        return _measure_pair(cluster, leader, topics, run_id, rate=rate, warmup_s=warmup_s, after_s=after_s,
                             timeout_s=timeout_s)
    finally:
        _delete_topics(cluster, list(topics.values()))


def _measure_pair(cluster: LocalCluster, leader: int, topics: dict[str, str], run_id: str, *, rate: float,
                  warmup_s: float, after_s: float, timeout_s: float) -> list[FailoverResult]:
    senders: dict[str, PartitionSender] = {}
    elected: dict[str, tuple[int, float]] = {}  # acks -> (new leader, seconds from the kill)
    kill_times: list[float] = []  # one entry once the node is killed (then it must be restarted)
    try:
        with cluster.metadata(timeout_s) as metadata:
            was_controller = metadata.controller() == leader
            for acks, topic in topics.items():
                senders[acks] = PartitionSender(cluster.bootstrap_servers, topic, 0, acks=acks, rate=rate,
                                                run_id=f"{run_id}{acks}").start()
            _wait_for(lambda: all(sender.acked for sender in senders.values()), timeout_s, "a first acknowledgement")
            time.sleep(warmup_s)
            kill_times.append(time.monotonic())
            cluster.kill(leader)

            def all_elected() -> bool:
                for acks, topic in topics.items():
                    if acks in elected:
                        continue
                    try:
                        now = metadata.leader(topic, 0)
                    except BrokerError:
                        continue
                    if now not in (None, leader):
                        elected[acks] = (int(now), time.monotonic() - kill_times[0])
                return len(elected) == len(topics)

            _wait_for(all_elected, timeout_s, f"new leaders for {', '.join(topics.values())}", poll_s=0.05)
            time.sleep(after_s)
    finally:
        for sender in senders.values():
            sender.stop()
        if kill_times:
            restarting = time.monotonic()
            cluster.restart(leader, timeout=timeout_s)
            restart_s = time.monotonic() - restarting
    killed_at = kill_times[0]
    with cluster.metadata(timeout_s) as metadata:

        def rejoined() -> bool:
            try:
                return all(leader in metadata.partitions(topic)[0].isr for topic in topics.values())
            except BrokerError:
                return False

        _wait_for(rejoined, timeout_s, f"node {leader} rejoining the ISRs")
        rejoin_s = time.monotonic() - restarting
    results = []
    for acks, topic in topics.items():
        sender = senders[acks]
        acknowledged = sender.acknowledged_numbers()
        found = read_partition(cluster.bootstrap_servers, topic, 0, sender.run_id, timeout_s)
        new_leader, election_s = elected[acks]
        results.append(FailoverResult(
            topic=topic, partition=0, acks=acks, killed=leader, killed_controller=was_controller,
            new_leader=new_leader, acknowledged=len(acknowledged), failed=sender.failed,
            stall_s=longest_stall([t for t, _ in sender.acked], killed_at), election_s=election_s,
            restart_s=restart_s, rejoin_s=rejoin_s, read_back=len(found), missing=len(acknowledged - found),
        ))
    return results


def acks_comparison(cluster: LocalCluster, kills: int = 10, *, rate: float = 1000.0,
                    progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """``kills`` leader kills, each met by an ``acks=1`` and an ``acks=all`` producer at once (see
    :func:`paired_kill`), the node killed taking turns; one row per setting and kill, with the fields of
    :class:`~orderlab.replication.FailoverResult` plus ``run``. Fewer kills under test mode."""
    count = kills_for_this_run(kills)
    rows = []
    for run in range(1, count + 1):
        leader = (run - 1) % cluster.brokers + 1
        for result in paired_kill(cluster, leader, rate=rate):
            rows.append({"run": run, **asdict(result)})
        if progress is not None:
            by_acks = {row["acks"]: row for row in rows[-len(ACKS_SETTINGS):]}
            progress(f"kill {run}/{count} (node {leader}): " + "; ".join(
                f"acks={acks} {row['acknowledged']:,} acknowledged, {row['missing']} missing" for acks, row in by_acks.items()))
    return pd.DataFrame(rows)


def acks_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The lesson's table: per producer setting, kills, records acknowledged, acknowledged but missing when
    read back, kills that lost any, and the median stall."""
    summary = acks_summary(runs)
    table = pd.DataFrame(
        {
            "kills": summary["kills"].astype(int),
            "acknowledged": summary["acknowledged"].astype(int),
            "missing when read back": summary["missing"].astype(int),
            "kills that lost records": summary["kills_with_loss"].astype(int),
            "median stall (s)": summary["median_stall_s"],
        }
    )
    table.index = pd.Index([SETTING_LABELS.get(str(acks), f"acks={acks}") for acks in summary.index], name=SETTING_HEADING)
    return table


def missing_with(runs: pd.DataFrame, acks: str) -> int:
    """Acknowledged records missing after the kills of one ``acks`` setting, added up."""
    chosen = runs[runs["acks"] == acks]
    if chosen.empty:
        raise ValueError(f"no kill with acks={acks} in these runs (they have {', '.join(sorted(set(runs['acks'])))})")
    return int(chosen["missing"].sum())
