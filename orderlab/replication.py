"""Measurements for the replication lesson, on a real local cluster: who leads what, what a leader's crash costs, what acks buys.

- :func:`partitions_frame`: every partition of a topic (leader, replicas,
  in-sync replicas) as a DataFrame, for a live view.
- :func:`measure_failover`: a producer writes to one partition, its leader is
  SIGKILLed; how long producing stalled, how long until a new leader, and,
  after the node is restarted, how long until it is back in the ISR; the
  topic is then read back to count acknowledged records that are missing.
- :func:`compare_acks`: that kill repeated for ``acks=1`` and ``acks=all``
  (replication factor 3, ``min.insync.replicas=2``), one fresh topic per
  kill. ``acks=1`` loses what the leader acknowledged before a follower
  copied it; on one machine the copy is fast, so some runs lose nothing.

``python -m orderlab.replication --kills 10`` starts a private cluster, runs
the comparison and prints the table (the figures depend on the machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from .broker.cluster import LocalCluster
from .broker.errors import BrokerError
from .broker.metadata import ClusterMetadata, PartitionState
from .broker.procs import free_consecutive_ports
from .polling import poll_until

Progress = Callable[[str], None]

PARTITION_COLUMNS = ["topic", "partition", "leader", "replicas", "isr", "offline", "under_replicated"]
ACKS_SETTINGS = ("1", "all")


def partitions_frame(partitions: Iterable[PartitionState]) -> pd.DataFrame:
    """One row per partition: leader (None while it has none), replicas, in-sync replicas, offline replicas."""
    rows = [
        {
            "topic": state.topic,
            "partition": state.partition,
            "leader": state.leader,
            "replicas": state.replicas,
            "isr": state.isr,
            "offline": state.offline,
            "under_replicated": state.under_replicated,
        }
        for state in partitions
    ]
    return pd.DataFrame(rows, columns=PARTITION_COLUMNS).astype({"leader": "Int64"})


def topic_frame(cluster: LocalCluster, topic: str) -> pd.DataFrame:
    """:func:`partitions_frame` of ``topic`` as the cluster describes it now."""
    return partitions_frame(cluster.describe(topic))


@dataclass(frozen=True)
class FailoverResult:
    """One leader kill, measured. Times are seconds; ``missing`` is None when the topic was not read back."""

    topic: str
    partition: int
    acks: str
    killed: int  # the leader that was SIGKILLed
    killed_controller: bool  # it was the active controller too (a controller election comes first)
    new_leader: int
    acknowledged: int  # records the producer saw acknowledged
    failed: int  # sends that ended in an error (the producer gave up on them)
    stall_s: float  # the longest time without an acknowledgement, from the last one before the kill
    election_s: float  # from the kill until the metadata named another leader
    restart_s: float  # from the restart until the node answered
    rejoin_s: float  # from the restart until the node was back in the partition's ISR
    read_back: int | None  # this run's records found in the partition afterwards
    missing: int | None  # acknowledged records not among them


class PartitionSender:
    """A producer thread writing numbered records (``<run>-<n>``) to one partition at a steady rate.

    Sends are asynchronous, so a stall shows as a gap between
    acknowledgements while the records wait in the producer's buffer.
    Idempotence is off for every ``acks`` setting, so ``acks`` is the only
    difference between runs.
    """

    def __init__(self, bootstrap_servers: str, topic: str, partition: int, *, acks: str, rate: float, run_id: str) -> None:
        from kafka import KafkaProducer

        if acks not in ACKS_SETTINGS:
            raise ValueError(f"acks must be one of {', '.join(ACKS_SETTINGS)}, got {acks!r}")
        if not rate > 0:
            raise ValueError(f"rate must be > 0 records/s, got {rate!r}")
        self.topic, self.partition, self.rate, self.run_id = topic, partition, rate, run_id
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=f"orderlab-replication-{run_id}",
            acks=1 if acks == "1" else "all",
            enable_idempotence=False,
            linger_ms=0,
            retry_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
        )
        self.acked: list[tuple[float, int]] = []  # (time.monotonic() of the acknowledgement, record number)
        self.failed = 0
        self.sent = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sender-{run_id}", daemon=True)

    def start(self) -> "PartitionSender":
        self._thread.start()
        return self

    def _acknowledged(self, number: int, _metadata: object) -> None:
        self.acked.append((time.monotonic(), number))  # list.append is atomic: called from the producer's I/O thread

    def _failed(self, _number: int, _error: Exception) -> None:
        self.failed += 1

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stopping.is_set():
            number = self.sent
            future = self._producer.send(self.topic, f"{self.run_id}-{number}".encode(), partition=self.partition)
            future.add_callback(self._acknowledged, number).add_errback(self._failed, number)
            self.sent += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell behind (a full machine): do not burst to catch up

    def stop(self, timeout: float = 30.0) -> None:
        """Stop sending, wait up to ``timeout`` s for what is in flight, close the producer."""
        self._stopping.set()
        self._thread.join(timeout)
        self._producer.flush(timeout=timeout)
        self._producer.close(timeout=5)

    def acknowledged_numbers(self) -> set[int]:
        return {number for _, number in self.acked}


def longest_stall(ack_times: Sequence[float], since: float) -> float:
    """The longest gap between acknowledgements, counted from the last one before ``since`` (the kill).

    An acknowledgement that never came after ``since`` makes the stall run to the last one seen.
    """
    times = sorted(ack_times)
    before = [t for t in times if t <= since]
    after = [t for t in times if t > since]
    if not after:
        return 0.0
    points = [before[-1] if before else since, *after]
    return max(later - earlier for earlier, later in zip(points, points[1:]))


def read_partition(bootstrap_servers: str, topic: str, partition: int, prefix: str, timeout: float = 60.0) -> set[int]:
    """The record numbers of run ``prefix`` in the partition, read from the start by a fresh consumer."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None, client_id="orderlab-read-back")
    try:
        assigned = TopicPartition(topic, partition)
        consumer.assign([assigned])
        consumer.seek_to_beginning(assigned)
        end = consumer.end_offsets([assigned])[assigned]
        found: set[int] = set()
        marker = prefix + "-"
        deadline = time.monotonic() + timeout
        while consumer.position(assigned) < end:
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic}[{partition}] back did not reach offset {end} within {timeout:g} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    text = record.value.decode(errors="replace")
                    if text.startswith(marker):
                        found.add(int(text[len(marker):]))
        return found
    finally:
        consumer.close()


def wait_for_new_leader(metadata: ClusterMetadata, topic: str, partition: int, old_leader: int, timeout_s: float) -> int:
    """The node that leads ``topic[partition]`` once it is led by another than ``old_leader`` (killed just now).

    A metadata request may fail while the cluster elects, so a failed one only means "not yet".
    """
    def another_leader() -> int | None:
        try:
            now = metadata.leader(topic, partition)
        except BrokerError:
            return None
        return now if now not in (None, old_leader) else None

    return int(_wait(another_leader, timeout_s, f"a new leader for {topic}[{partition}]"))  # type: ignore[arg-type]


def _wait(condition: Callable[[], object], timeout: float, what: str) -> object:
    return poll_until(condition, timeout, what, poll_s=0.05, error=BrokerError)


def create_replicated_topic(cluster: LocalCluster, topic: str, partitions: int = 1, timeout: float = 30.0) -> None:
    """A topic with three replicas on ``cluster``; returns when every partition has a leader and a full ISR."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-replication-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, min(3, cluster.brokers))], timeout_ms=int(timeout * 1000))
    finally:
        admin.close()
    with cluster.metadata(timeout) as metadata:

        def settled() -> bool:
            try:
                states = metadata.partitions(topic)
            except BrokerError:
                return False
            return len(states) == partitions and all(s.leader is not None and not s.under_replicated for s in states)

        _wait(settled, timeout, f"topic {topic} getting a leader and a full ISR for every partition")


def delete_topic(cluster: LocalCluster, topic: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers, client_id="orderlab-replication-admin")
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


def measure_failover(
    cluster: LocalCluster,
    topic: str,
    partition: int = 0,
    *,
    acks: str = "all",
    rate: float = 500.0,
    warmup_s: float = 2.0,
    after_s: float = 2.0,
    timeout_s: float = 90.0,
    read_back: bool = True,
    progress: Progress | None = None,
) -> FailoverResult:
    """SIGKILL the leader of ``topic``'s ``partition`` while a producer writes to it; restart it; measure.

    The partition must have a leader and a full ISR. Producing runs
    ``warmup_s`` before the kill and ``after_s`` after the new leader is
    known; the node is restarted once producing has stopped. Every wait is
    bounded by ``timeout_s``; the killed node is restarted even when a
    measurement fails.
    """
    say = progress or (lambda message: None)
    run_id = uuid.uuid4().hex[:8]
    with cluster.metadata(timeout_s) as metadata:
        before = {state.partition: state for state in metadata.partitions(topic)}
        if partition not in before:
            raise BrokerError(f"topic {topic!r} has no partition {partition}")
        state = before[partition]
        if state.leader is None or state.under_replicated:
            raise BrokerError(f"{topic}[{partition}] must have a leader and a full ISR first, it has {state}")
        leader = state.leader
        was_controller = metadata.controller() == leader
        sender = PartitionSender(cluster.bootstrap_servers, topic, partition, acks=acks, rate=rate, run_id=run_id).start()
        killed = False
        try:
            _wait(lambda: sender.acked, timeout_s, "the first acknowledgement")
            time.sleep(warmup_s)
            role = " and the active controller" if was_controller else ""
            say(f"acks={acks}: killing node {leader}, the leader of {topic}[{partition}]{role}, after {len(sender.acked)} acknowledged records")
            killed_at = time.monotonic()
            cluster.kill(leader)
            killed = True
            new_leader = wait_for_new_leader(metadata, topic, partition, leader, timeout_s)
            election_s = time.monotonic() - killed_at
            time.sleep(after_s)
        finally:
            sender.stop()
            if killed:
                restarting = time.monotonic()
                cluster.restart(leader, timeout=timeout_s)
                restart_s = time.monotonic() - restarting
        say(f"acks={acks}: node {new_leader} leads after {election_s:.2f} s; node {leader} restarted in {restart_s:.1f} s")

        def rejoined() -> bool:
            try:
                return leader in {s.partition: s for s in metadata.partitions(topic)}[partition].isr
            except (BrokerError, KeyError):
                return False

        _wait(rejoined, timeout_s, f"node {leader} rejoining the ISR of {topic}[{partition}]")
        rejoin_s = time.monotonic() - restarting
    acknowledged = sender.acknowledged_numbers()
    found = read_partition(cluster.bootstrap_servers, topic, partition, run_id, timeout_s) if read_back else None
    return FailoverResult(
        topic=topic,
        partition=partition,
        acks=acks,
        killed=leader,
        killed_controller=was_controller,
        new_leader=new_leader,
        acknowledged=len(acknowledged),
        failed=sender.failed,
        stall_s=longest_stall([t for t, _ in sender.acked], killed_at),
        election_s=election_s,
        restart_s=restart_s,
        rejoin_s=rejoin_s,
        read_back=None if found is None else len(found),
        missing=None if found is None else len(acknowledged - found),
    )


def compare_acks(
    cluster: LocalCluster,
    kills: int = 10,
    *,
    acks: Sequence[str] = ACKS_SETTINGS,
    rate: float = 2000.0,
    warmup_s: float = 2.0,
    after_s: float = 2.0,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """``kills`` leader kills for each ``acks`` setting, taking turns, each on a fresh one-partition topic.

    One row per kill (the fields of :class:`FailoverResult` plus ``run``);
    :func:`acks_summary` adds them up.
    """
    if kills < 1:
        raise ValueError(f"kills must be at least 1, got {kills}")
    rows = []
    for run in range(1, kills + 1):
        for setting in acks:  # taking turns, so a busy spell of the machine hits both settings
            topic = f"replication-acks-{'all' if setting == 'all' else setting}-{uuid.uuid4().hex[:8]}"
            create_replicated_topic(cluster, topic)
            try:
                result = measure_failover(cluster, topic, acks=setting, rate=rate, warmup_s=warmup_s, after_s=after_s, progress=progress)
            finally:
                delete_topic(cluster, topic)
            rows.append({"run": run, **asdict(result)})
            if progress:
                progress(
                    f"run {run}/{kills} acks={setting}: {result.acknowledged} acknowledged, {result.missing} missing, "
                    f"stalled {result.stall_s:.2f} s"
                )
    return pd.DataFrame(rows)


def acks_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per acks setting: kills, records acknowledged, acknowledged but missing, kills that lost any,
    kills that hit the active controller too, median stall, election and rejoin times."""
    grouped = runs.groupby("acks", sort=False)
    return pd.DataFrame(
        {
            "kills": grouped.size(),
            "acknowledged": grouped["acknowledged"].sum(),
            "missing": grouped["missing"].sum(),
            "kills_with_loss": grouped["missing"].apply(lambda missing: int((missing > 0).sum())),
            "most_missing_in_one_kill": grouped["missing"].max(),
            "controller_kills": grouped["killed_controller"].sum().astype(int),
            "median_stall_s": grouped["stall_s"].median().round(2),
            "median_election_s": grouped["election_s"].median().round(2),
            "median_rejoin_s": grouped["rejoin_s"].median().round(1),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orderlab.replication",
        description="Kill a partition's leader N times for acks=1 and acks=all on a private three-node cluster, "
        "and count acknowledged records that are missing afterwards.",
    )
    parser.add_argument("--kills", type=int, default=10, help="leader kills per acks setting (default 10)")
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second the producer sends (default 2000)")
    parser.add_argument("--csv", type=Path, default=None, help="also write one row per kill to this CSV file")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="orderlab-replication-") as folder:
        cluster = LocalCluster(Path(folder), free_consecutive_ports(3))
        say(f"starting a private cluster at {cluster.bootstrap_servers}")
        try:
            cluster.start()
            runs = compare_acks(cluster, args.kills, rate=args.rate, progress=say)
        except BrokerError as err:
            print(f"orderlab replication: {err}", file=sys.stderr)
            return 1
        finally:
            cluster.stop()
    if args.csv:
        runs.to_csv(args.csv, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(runs.drop(columns=["topic", "partition"]).to_string(index=False))
        print()
        print(acks_summary(runs).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
