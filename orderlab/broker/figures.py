"""What a local Kafka costs: start time and resident memory, single broker and three-node cluster.

    python -m orderlab.broker.figures [--load-seconds 30] [--rate 200]

Each is started on a fresh data dir in a temporary folder on free ports,
measured idle and then under a light load (a producer and a consumer
group), and stopped; nothing is left behind. Resident memory is VmRSS
from /proc/PID/status, so this runs on Linux only. The figures depend on
the machine and on what else runs on it; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .cluster import LocalCluster
from .errors import BrokerError
from .jvm import KafkaJvm
from .local import LocalBroker
from .procs import free_consecutive_ports, free_port

SETTLE_S = 10.0  # after start, before the idle reading: the JVMs finish their start-up work
RECORD_BYTES = 300  # about an order event


def resident_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (10^6 bytes), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BrokerError(f"/proc/{pid}/status has no VmRSS line")


@dataclass(frozen=True)
class Figures:
    """One kind of Kafka, measured. Memory per node in MB, in node order."""

    name: str
    start_s: float  # from start() until every node answers, on a fresh data dir (formatting included)
    idle_mb: tuple[float, ...]
    loaded_mb: tuple[float, ...]  # the highest reading of each node during the load
    records: int  # records acknowledged during the load
    restart_s: float | None = None  # a second start on the same data, when measured


class LightLoad:
    """A producer at ``rate`` records/s (acks=all) and a consumer group reading them, in two threads."""

    def __init__(self, bootstrap_servers: str, topic: str, rate: float) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.topic, self.rate = topic, rate
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, client_id="orderlab-figures")
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, group_id=f"figures-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest", client_id="orderlab-figures",
        )  # fmt: skip
        self.acknowledged = 0
        self.consumed = 0
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._produce, daemon=True), threading.Thread(target=self._consume, daemon=True)]

    def _count(self, _metadata: object) -> None:
        self.acknowledged += 1

    def _produce(self) -> None:
        payload = b"x" * RECORD_BYTES
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self.producer.send(self.topic, payload).add_callback(self._count)
            next_at += 1.0 / self.rate
            self._stopping.wait(max(0.0, next_at - time.monotonic()))

    def _consume(self) -> None:
        while not self._stopping.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                self.consumed += len(records)

    def __enter__(self) -> "LightLoad":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(10)
        self.producer.flush(timeout=30)
        self.producer.close(timeout=5)
        self.consumer.close()


def _create_topic(bootstrap_servers: str, topic: str, replicas: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="orderlab-figures")
    try:
        admin.create_topics([NewTopic(topic, 6, replicas)])
    finally:
        admin.close()


def _under_load(nodes: Sequence[KafkaJvm], bootstrap_servers: str, replicas: int, seconds: float, rate: float) -> tuple[tuple[float, ...], int]:
    """The highest VmRSS of each node, read every second while LightLoad runs for ``seconds``."""
    topic = f"figures-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap_servers, topic, replicas)
    pids = [node.pid for node in nodes]
    if None in pids:
        raise BrokerError("a node stopped before the load began")
    highest = [0.0] * len(nodes)
    with LightLoad(bootstrap_servers, topic, rate) as load:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            highest = [max(high, resident_mb(pid)) for high, pid in zip(highest, pids)]  # type: ignore[arg-type]
    return tuple(highest), load.acknowledged


def measure_single(folder: Path, load_s: float, rate: float) -> Figures:
    broker = LocalBroker(folder / "single", free_port())
    try:
        started = time.monotonic()
        broker.start()
        start_s = time.monotonic() - started
        time.sleep(SETTLE_S)
        idle = (resident_mb(broker.pid),)  # type: ignore[arg-type]
        loaded, records = _under_load([broker], broker.bootstrap_servers, 1, load_s, rate)
    finally:
        if not broker.stop(timeout=20):
            broker.kill()
    return Figures("single broker (512 MB heap)", start_s, idle, loaded, records)


def measure_cluster(folder: Path, load_s: float, rate: float) -> Figures:
    cluster = LocalCluster(folder / "cluster", free_consecutive_ports(3))
    try:
        started = time.monotonic()
        cluster.start()
        start_s = time.monotonic() - started
        time.sleep(SETTLE_S)
        idle = tuple(resident_mb(node.pid) for node in cluster.nodes)  # type: ignore[arg-type]
        loaded, records = _under_load(cluster.nodes, cluster.bootstrap_servers, 3, load_s, rate)
        cluster.stop()
        started = time.monotonic()
        cluster.start()
        restart_s = time.monotonic() - started
    finally:
        cluster.stop()
    return Figures(f"three-node cluster ({cluster.heap_mb} MB heap each)", start_s, idle, loaded, records, restart_s)


def report(figures: Sequence[Figures]) -> list[str]:
    lines = []
    for item in figures:
        def mb(values: tuple[float, ...]) -> str:
            per_node = " + ".join(f"{value:.0f}" for value in values)
            return f"{sum(values):.0f} MB" + (f" ({per_node})" if len(values) > 1 else "")

        again = f", {item.restart_s:.1f} s on its data" if item.restart_s is not None else ""
        lines.append(f"{item.name}: start {item.start_s:.1f} s fresh{again}; resident idle {mb(item.idle_mb)}, "
                     f"under load {mb(item.loaded_mb)}; {item.records} records acknowledged")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orderlab.broker.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="records per second during the load (default 200)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each this many times, taking turns")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("orderlab figures: resident memory is read from /proc, which this system does not have", file=sys.stderr)
        return 1
    results: list[Figures] = []
    print(f"light load: {args.rate:g} records/s of {RECORD_BYTES} B (acks=all) to 6 partitions plus one consumer group, "
          f"for {args.load_seconds:g} s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="orderlab-figures-") as folder:
        try:
            for round_ in range(args.repeat):
                results.append(measure_single(Path(folder) / f"round-{round_}", args.load_seconds, args.rate))
                results.append(measure_cluster(Path(folder) / f"round-{round_}", args.load_seconds, args.rate))
                print("\n".join(report(results[-2:])), flush=True)
        except BrokerError as err:
            print(f"orderlab figures: {err}", file=sys.stderr)
            return 1
    if args.repeat > 1:
        for name in dict.fromkeys(item.name for item in results):
            starts = [item.start_s for item in results if item.name == name]
            print(f"{name}: median start {statistics.median(starts):.1f} s over {len(starts)} (min {min(starts):.1f}, max {max(starts):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
