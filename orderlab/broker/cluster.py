"""A local Kafka cluster: three KRaft nodes from the same Maven jars, on 127.0.0.1.

    from orderlab.broker import LocalCluster
    cluster = LocalCluster()           # nodes 1-3 on ports 19092-19094
    cluster.start()                    # the three JVMs together; returns when all answer
    cluster.node_of_leader("orders", 0)
    cluster.kill(2); cluster.restart(2)
    cluster.stop()

Three combined nodes (each JVM a broker and a controller), not one controller
and three brokers, because:

- the controller quorum of three survives the loss of any one node, the
  active controller included, so a lesson may kill whichever node leads a
  partition and the cluster carries on. With a single controller, killing it
  stops every leader election: a single point of failure the replication
  lesson is not about;
- three JVMs, not four: each takes about a quarter of a GB at a 256 MB heap,
  so the cluster fits beside JupyterLab on a laptop, and it starts sooner on
  two cores.

Kafka advises against combined nodes in production (a busy broker can starve
its controller); a lesson's load is far from that.

On disk, ``<cache>/cluster-<first port>/`` holds ``orderlab-cluster.json``
(ports, cluster id, heap: fixed at the first start) and one folder per node,
``node-N/``, which is a :class:`~orderlab.broker.jvm.KafkaJvm` data dir of its
own (server.properties, broker.log, kafka-data, the pid in
orderlab-broker.json). Node N listens on ``first port + N - 1``. So a later
process finds the nodes again: ``LocalCluster.from_data_dir(d)``, or
:meth:`LocalCluster.running`.

Stopping sends SIGTERM to every node at once and SIGKILLs each one still
running after a bound: a node whose peers are already gone has no quorum to
hand its partitions to, and its controlled shutdown never finishes.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .config import (
    HOST,
    KAFKA_DATA,
    BrokerState,
    ClusterNodeConfig,
    ClusterState,
    new_cluster_id,
    render_log4j2,
)
from .errors import BrokerError
from .jars import default_cache_dir, ensure_jars, file_lock, find_java
from .jvm import KafkaJvm, format_storage
from .metadata import ClusterMetadata, PartitionState
from .procs import free_port, port_accepts, port_is_free, wait_exit

DEFAULT_CLUSTER_PORT = 19092  # beside the single broker's 9092, as in docker-compose.yml's cluster profile
DEFAULT_BROKERS = 3
MIN_BROKERS, MAX_BROKERS = 3, 5  # two voters stop when either is down; more than five will not fit a laptop
DEFAULT_NODE_HEAP_MB = 256
STOP_TIMEOUT_S = 15.0


def default_cluster_dir(first_port: int, cache_dir: Path | None = None) -> Path:
    """``<cache>/cluster-<first port>``: one cluster's nodes, config, logs and state."""
    return (cache_dir or default_cache_dir()) / f"cluster-{first_port}"


class ClusterNode(KafkaJvm):
    """One node of a LocalCluster: its own data dir ``node-N`` inside the cluster's folder."""

    def __init__(self, cluster_dir: Path, node_id: int, port: int, *, cache_dir: Path | None, heap_mb: int) -> None:
        super().__init__(Path(cluster_dir) / f"node-{node_id}", port, cache_dir=cache_dir, heap_mb=heap_mb)
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"ClusterNode({self.node_id}, port={self.port}, data_dir={str(self.data_dir)!r})"

    @property
    def label(self) -> str:
        return f"Kafka node {self.node_id}"

    def _heap_args(self) -> list[str]:
        return [f"-Xmx{self.heap_mb}m", f"-Xms{min(128, self.heap_mb)}m", "-XX:+ExitOnOutOfMemoryError"]

    def config(self, state: ClusterState) -> ClusterNodeConfig:
        return ClusterNodeConfig(self.data_dir, self.node_id, self.port, state.controller_ports)

    def formatted(self) -> bool:
        return (self.data_dir / KAFKA_DATA / "meta.properties").exists()


@dataclass(frozen=True)
class NodeStatus:
    """One node as ``status`` found it."""

    node_id: int
    port: int
    pid: int | None
    answers: bool  # its port accepts connections and the cluster counts it as a live broker
    controller: bool  # the active KRaft controller
    leads: tuple[PartitionState, ...]  # the partitions of non-internal topics it leads


@dataclass(frozen=True)
class ClusterStatus:
    data_dir: Path
    nodes: tuple[NodeStatus, ...]
    controller: int | None
    leaderless: tuple[PartitionState, ...]  # partitions whose every in-sync replica is down
    problem: str | None = None  # why the metadata could not be read, when a node accepts connections

    @property
    def answering(self) -> tuple[int, ...]:
        return tuple(node.node_id for node in self.nodes if node.answers)


class LocalCluster:
    """Start, stop, kill, restart and inspect a local cluster of ``brokers`` KRaft nodes.

    Every method that waits is bounded; on a failed start the nodes this call
    launched are killed and BrokerError carries the end of the failing
    node's log.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = DEFAULT_CLUSTER_PORT,
        brokers: int = DEFAULT_BROKERS,
        *,
        cache_dir: Path | None = None,
        heap_mb: int = DEFAULT_NODE_HEAP_MB,
    ) -> None:
        if not MIN_BROKERS <= brokers <= MAX_BROKERS:
            raise BrokerError(
                f"a local cluster has {MIN_BROKERS} to {MAX_BROKERS} nodes, not {brokers} "
                "(--brokers 1 is the single broker; two controllers stop when either is down)"
            )
        if not 0 < port <= 65536 - brokers:
            raise BrokerError(f"the {brokers} nodes need ports {port} to {port + brokers - 1}: choose a lower first port (--port)")
        self.first_port = port
        self.brokers = brokers
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        self.data_dir = Path(data_dir or default_cluster_dir(port, cache_dir)).expanduser().resolve()
        self.nodes: tuple[ClusterNode, ...] = tuple(
            ClusterNode(self.data_dir, node_id, port + node_id - 1, cache_dir=cache_dir, heap_mb=heap_mb)
            for node_id in range(1, brokers + 1)
        )

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.data_dir)!r}, port={self.first_port}, brokers={self.brokers})"

    @classmethod
    def from_data_dir(cls, data_dir: Path, *, cache_dir: Path | None = None) -> "LocalCluster":
        """The cluster last started in ``data_dir`` (same ports, node count and heap)."""
        state = ClusterState.read(Path(data_dir).expanduser().resolve())
        if state is None:
            raise BrokerError(f"no cluster was started in {data_dir} (no {data_dir}/orderlab-cluster.json)")
        return cls(data_dir, state.first_port, state.brokers, cache_dir=cache_dir, heap_mb=state.heap_mb)

    @classmethod
    def running(cls, cache_dir: Path | None = None) -> list["LocalCluster"]:
        """The clusters in the cache (``cluster-*``) with at least one node running, by first port."""
        found = []
        for folder in sorted((cache_dir or default_cache_dir()).glob("cluster-*")):
            if ClusterState.read(folder) is None:
                continue
            cluster = cls.from_data_dir(folder, cache_dir=cache_dir)
            if cluster.is_running():
                found.append(cluster)
        return sorted(found, key=lambda cluster: cluster.first_port)

    # -- where things are -------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """Every node's address, so a client bootstraps while any one of them is down."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def state(self) -> ClusterState | None:
        return ClusterState.read(self.data_dir)

    def node(self, node_id: int) -> ClusterNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise BrokerError(f"there is no node {node_id}: the cluster in {self.data_dir} has nodes 1 to {self.brokers}")

    def running_nodes(self) -> list[int]:
        return [node.node_id for node in self.nodes if node.is_running()]

    def is_running(self) -> bool:
        """Whether any node's JVM is alive."""
        return bool(self.running_nodes())

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 120.0) -> list[int]:
        """Start every node that is not running, all at once; return when every node answers.

        Returns the ids of the nodes it launched (none if all ran already).
        """
        if os.name != "posix":
            raise BrokerError("the local cluster runs on Linux and macOS; on Windows use `docker compose --profile cluster up -d`")
        deadline = time.monotonic() + timeout
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / ".lock"):
            state = self._checked_state()
            down = [node for node in self.nodes if not node.is_running()]
            if down:
                state = self._plan(state, down)
                self._launch(state, down, self.nodes, deadline, timeout)
            else:
                self._wait_answering(self.nodes, deadline, timeout)
        return [node.node_id for node in down]

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> list[int]:
        """Stop every node: SIGTERM to all at once, SIGKILL to each still running after ``timeout`` s.

        Returns the ids of the nodes that were running.
        """
        running = {node: pid for node in self.nodes if (pid := node.pid) is not None}
        for node, pid in running.items():
            node._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node, pid in running.items():
            if not wait_exit(pid, max(0.0, deadline - time.monotonic())):
                node._signal(pid, signal.SIGKILL)
                wait_exit(pid, 10.0)
        for node in self.nodes:
            node._forget_pid()
        return sorted(node.node_id for node in running)

    def kill(self, node_id: int) -> bool:
        """SIGKILL one node at once (a crash); whether it was running."""
        node = self.node(node_id)
        was_running = node.is_running()
        node.kill()
        return was_running

    def restart(self, node_id: int, timeout: float = 90.0) -> None:
        """Start one node again on its data (stopping it first if it runs); return when it answers.

        The other nodes must hold a quorum without it: a lone node of three
        cannot elect a controller, so it would never answer.
        """
        node = self.node(node_id)
        deadline = time.monotonic() + timeout
        with file_lock(self.data_dir / ".lock"):
            state = self._checked_state()
            if state is None:
                raise BrokerError(
                    f"no cluster was started in {self.data_dir}: start it first (`orderlab broker start --brokers {self.brokers}`)"
                )
            others = [other.node_id for other in self.nodes if other is not node and other.is_running()]
            quorum = self.brokers // 2 + 1
            if len(others) < quorum - 1:
                raise BrokerError(
                    f"node {node_id} cannot start without a quorum: {quorum} of the {self.brokers} controllers must run, "
                    f"and only {len(others)} other node(s) do; start the whole cluster (`orderlab broker start --brokers {self.brokers}`)"
                )
            if node.is_running():
                node.stop(timeout=STOP_TIMEOUT_S)
            self._launch(self._plan(state, [node]), [node], [node], deadline, timeout)

    def _checked_state(self) -> ClusterState | None:
        state = self.state
        if state and (state.first_port != self.first_port or state.brokers != self.brokers):
            raise BrokerError(
                f"the cluster in {self.data_dir} has {state.brokers} nodes from port {state.first_port}, "
                f"not {self.brokers} from port {self.first_port}: use those, or another --data-dir"
            )
        return state

    def _plan(self, state: ClusterState | None, down: list[ClusterNode]) -> ClusterState:
        """Ports and cluster id for starting ``down``; written to the cluster's state file."""
        for node in down:
            if not port_is_free(node.port):
                raise BrokerError(
                    f"{HOST}:{node.port} (node {node.node_id}) is already in use by another process "
                    f"(not a node from {self.data_dir}): stop that, or choose another first port (--port)"
                )
        taken = {node.port for node in self.nodes}
        if state and len(down) < self.brokers:
            # The running nodes list these voters: a node that joins them must use the same.
            for node in down:
                port = state.controller_ports[node.node_id - 1]
                if not port_is_free(port):
                    raise BrokerError(
                        f"node {node.node_id}'s controller port {HOST}:{port} is in use by another process: stop the "
                        f"cluster (`orderlab broker stop --brokers {self.brokers}`) and start it again to pick new ports"
                    )
            controller_ports = state.controller_ports
        else:  # nothing runs: every voter list is rewritten, so a taken port is simply replaced
            controller_ports = tuple(
                self._keep_or_pick(state.controller_ports[index] if state else None, taken) for index in range(self.brokers)
            )
        planned = ClusterState(
            first_port=self.first_port,
            controller_ports=controller_ports,
            cluster_id=state.cluster_id if state else new_cluster_id(),
            heap_mb=self.heap_mb,
        )
        planned.write(self.data_dir)
        return planned

    @staticmethod
    def _keep_or_pick(remembered: int | None, taken: set[int]) -> int:
        port = remembered if remembered and remembered not in taken and port_is_free(remembered) else free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        return port

    def _launch(
        self, state: ClusterState, down: list[ClusterNode], wait_for: Iterable[ClusterNode], deadline: float, timeout: float
    ) -> None:
        """Format (once) and launch ``down`` together, then wait until ``wait_for`` answer; kill ``down`` on failure."""
        libs = ensure_jars(self.cache_dir)
        java = find_java()
        jvms = {}
        for node in down:
            config = node.config(state)
            jvms[node.node_id] = node._write_files(config.render_server_properties(), render_log4j2(node.data_dir), java, libs)
        unformatted = [(node, node._format_command(jvms[node.node_id], state.cluster_id)) for node in down if not node.formatted()]
        if unformatted:
            format_storage(unformatted)
        try:
            for node in down:
                node._spawn(jvms[node.node_id], BrokerState(port=node.port, controller_port=node.config(state).controller_port))
            self._wait_answering(list(wait_for), deadline, timeout)
        except BrokerError:
            for node in down:
                node.kill()
            raise

    def _wait_answering(self, nodes: list[ClusterNode], deadline: float, timeout: float) -> None:
        """Until each of ``nodes`` accepts connections and is a live broker of the cluster (bounded)."""
        while True:
            for node in nodes:
                state = node.state
                if not (state and state.pid and node._is_ours(state.pid)):
                    node._forget_pid()
                    raise BrokerError(f"{node.label} exited while starting (port {node.port}).{node._log_excerpt()}")
            silent = [node for node in nodes if not port_accepts(node.port, 0.5)]
            if not silent:
                live = self._live_brokers(max(1.0, min(5.0, deadline - time.monotonic())))
                silent = [node for node in nodes if node.node_id not in live]
                if not silent:
                    return
            if time.monotonic() >= deadline:
                names = ", ".join(str(node.node_id) for node in silent)
                raise BrokerError(
                    f"Kafka node(s) {names} did not answer at {self.bootstrap_servers} within {timeout:g} s."
                    f"{silent[0]._log_excerpt()}"
                )
            time.sleep(0.25)

    def _live_brokers(self, timeout: float) -> tuple[int, ...]:
        try:
            with ClusterMetadata(self._answering_servers(), timeout, client_id="orderlab-broker-probe") as metadata:
                return metadata.brokers()
        except BrokerError:
            return ()

    # -- inspecting -----------------------------------------------------------

    def _answering_servers(self) -> str:
        """The addresses of the nodes that accept connections (all of them if none does)."""
        answering = [node.bootstrap_servers for node in self.nodes if port_accepts(node.port, 0.5)]
        return ",".join(answering) or self.bootstrap_servers

    def metadata(self, timeout: float = 10.0) -> ClusterMetadata:
        """An open connection for repeated questions (close it, or use ``with``)."""
        return ClusterMetadata(self._answering_servers(), timeout)

    def describe(self, topic: str, timeout: float = 10.0) -> list[PartitionState]:
        """Every partition of ``topic``: leader, replicas, in-sync replicas."""
        with self.metadata(timeout) as metadata:
            return metadata.partitions(topic)

    def node_of_leader(self, topic: str, partition: int, timeout: float = 10.0) -> int | None:
        """The node that leads ``topic``'s ``partition`` now (None while it has no leader)."""
        with self.metadata(timeout) as metadata:
            return metadata.leader(topic, partition)

    def status(self, timeout: float = 5.0) -> ClusterStatus:
        """Each node up or down, the active controller, who leads what (from any node that answers)."""
        pids = {node.node_id: node.pid for node in self.nodes}
        accepting = {node.node_id for node in self.nodes if port_accepts(node.port, 0.5)}
        view, problem = None, None
        if accepting:
            try:
                with ClusterMetadata(self._answering_servers(), timeout, client_id="orderlab-broker-status") as metadata:
                    view = metadata.view()
            except BrokerError as err:
                problem = str(err)
        nodes = tuple(
            NodeStatus(
                node_id=node.node_id,
                port=node.port,
                pid=pids[node.node_id],
                answers=node.node_id in accepting and (view is None or node.node_id in view.brokers),
                controller=view is not None and view.controller == node.node_id,
                leads=view.led_by(node.node_id) if view else (),
            )
            for node in self.nodes
        )
        return ClusterStatus(
            data_dir=self.data_dir,
            nodes=nodes,
            controller=view.controller if view else None,
            leaderless=view.leaderless() if view else (),
            problem=problem,
        )


__all__ = [
    "DEFAULT_BROKERS",
    "DEFAULT_CLUSTER_PORT",
    "ClusterNode",
    "ClusterStatus",
    "LocalCluster",
    "NodeStatus",
    "default_cluster_dir",
]
