"""The cluster half of ``orderlab broker``: which cluster a command means, and what it prints.

``orderlab broker start --brokers 3`` starts a :class:`LocalCluster`;
``stop``, ``status``, ``kill NODE`` and ``restart NODE`` act on the cluster
named by ``--brokers``/``--port``/``--data-dir``, or else on the one that runs.
Without any of those, ``stop`` and ``status`` keep meaning the single broker
whenever it runs, so the single-broker path is unchanged.
"""

from __future__ import annotations

import argparse

from ..settings import configured_bootstrap
from .cluster import DEFAULT_CLUSTER_PORT, ClusterStatus, LocalCluster, default_cluster_dir
from .config import KAFKA_VERSION, ClusterState
from .errors import BrokerError
from .metadata import PartitionState
from .procs import default_port

START_TIMEOUT_S = 120.0


def _named_cluster(args: argparse.Namespace) -> LocalCluster | None:
    """The cluster ``--data-dir`` or ``--port`` names (one that was started there, or ``--brokers`` asks for)."""
    brokers = args.brokers if args.brokers and args.brokers > 1 else None
    found = _started_there(args)
    if found is not None:
        if brokers and found.brokers != brokers:
            raise BrokerError(
                f"the cluster in {found.data_dir} has {found.brokers} nodes, not {brokers}: "
                f"use --brokers {found.brokers}, or another --data-dir or --port"
            )
        return found
    if args.data_dir is not None:
        return LocalCluster(args.data_dir, args.port or DEFAULT_CLUSTER_PORT, brokers) if brokers else None
    if args.port is not None:
        return LocalCluster(port=args.port, brokers=brokers) if brokers else None
    return None


def _started_there(args: argparse.Namespace) -> LocalCluster | None:
    """The cluster that was started in ``--data-dir``, or in the cache folder of first port ``--port``."""
    if args.data_dir is not None:
        folder = args.data_dir.expanduser().resolve()
    elif args.port is not None:
        folder = default_cluster_dir(args.port)
    else:
        return None
    return LocalCluster.from_data_dir(folder) if ClusterState.read(folder) is not None else None


def _the_running_cluster() -> LocalCluster | None:
    running = LocalCluster.running()
    if len(running) > 1:
        ports = ", ".join(str(cluster.first_port) for cluster in running)
        raise BrokerError(f"several local clusters run (first ports {ports}): say which with --port")
    return running[0] if running else None


def cluster_for(args: argparse.Namespace, *, single_first: bool) -> LocalCluster | None:
    """The cluster this command acts on, or None for the single broker.

    ``single_first`` (stop, status): without ``--brokers``, a running single
    broker at the usual port wins over a cluster.
    """
    if args.brokers == 1:
        return None
    named = _named_cluster(args)
    if named is not None or args.port is not None or args.data_dir is not None:
        return named
    if args.brokers is None and single_first:
        from .local import LocalBroker

        port = default_port(configured_bootstrap())
        if LocalBroker(port=port).is_running():
            return None
        exported = default_cluster_dir(port)  # KAFKA_BOOTSTRAP_SERVERS names a cluster's first node
        if ClusterState.read(exported) is not None:
            return LocalCluster.from_data_dir(exported)
    running = _the_running_cluster()
    if running is not None:
        return running
    if args.brokers is None:
        return None
    return LocalCluster(brokers=args.brokers)  # the default cluster-19092, running or not


def cluster_for_node_action(args: argparse.Namespace) -> LocalCluster:
    """The cluster ``kill NODE`` or ``restart NODE`` means (never the single broker)."""
    if args.brokers == 1:
        raise BrokerError("kill and restart take a node of a cluster (e.g. `orderlab broker kill 2`), not of the single broker")
    cluster = cluster_for(args, single_first=False)
    if cluster is None and (args.port is not None or args.data_dir is not None):
        folder = args.data_dir.expanduser().resolve() if args.data_dir is not None else default_cluster_dir(args.port)
        raise BrokerError(f"no cluster was started in {folder}: start one with `orderlab broker start --brokers 3`")
    if cluster is None:
        fallback = default_cluster_dir(DEFAULT_CLUSTER_PORT)
        if ClusterState.read(fallback) is None:
            raise BrokerError("no local cluster runs here: start one with `orderlab broker start --brokers 3`")
        cluster = LocalCluster.from_data_dir(fallback)
    if ClusterState.read(cluster.data_dir) is None:
        raise BrokerError(
            f"no cluster was started in {cluster.data_dir}: start one with `orderlab broker start --brokers {cluster.brokers}`"
        )
    return cluster


# -- what the commands print ------------------------------------------------------


def format_leads(partitions: tuple[PartitionState, ...]) -> str:
    """``orders[0,3] payments[1]``: partitions grouped by topic."""
    by_topic: dict[str, list[int]] = {}
    for state in partitions:
        by_topic.setdefault(state.topic, []).append(state.partition)
    return " ".join(f"{topic}[{','.join(str(p) for p in sorted(numbers))}]" for topic, numbers in sorted(by_topic.items()))


def format_status(status: ClusterStatus) -> list[str]:
    """The lines ``orderlab broker status`` prints for a cluster."""
    controller = f"node {status.controller}" if status.controller is not None else "none answers"
    up = f"{len(status.answering)} of {len(status.nodes)} nodes up"
    lines = [f"Kafka cluster in {status.data_dir}: {up}, active controller: {controller}"]
    for node in status.nodes:
        if node.answers:
            state = f"up (pid {node.pid})" if node.pid else "up (not started from here)"
        elif node.pid:
            state = f"running (pid {node.pid}), not answering"
        else:
            state = "down"
        role = "  controller" if node.controller else ""
        leads = f"  leads {len(node.leads)}: {format_leads(node.leads)}" if node.leads else ("  leads nothing" if node.answers else "")
        lines.append(f"node {node.node_id}  127.0.0.1:{node.port}  {state}{role}{leads}")
    if status.leaderless:
        lines.append(f"no leader (every in-sync replica down): {format_leads(status.leaderless)}")
    if status.problem:
        lines.append(f"could not read the cluster's metadata: {status.problem}")
    return lines


def start_cluster(args: argparse.Namespace, cluster: LocalCluster) -> int:
    started = cluster.start(timeout=args.timeout or START_TIMEOUT_S)
    if not started:
        verb = "was already up"
    elif len(started) == cluster.brokers:
        verb = "is up"
    else:
        verb = f"is up again (started node{'s' if len(started) > 1 else ''} {', '.join(map(str, started))})"
    print(f"Kafka {KAFKA_VERSION} cluster {verb}: {cluster.brokers} nodes at {cluster.bootstrap_servers} (data: {cluster.data_dir})")
    print(f"export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}")
    return 0


def stop_cluster(args: argparse.Namespace, cluster: LocalCluster) -> int:
    stopped = cluster.stop(timeout=args.timeout or 15.0)
    if stopped:
        print(f"stopped the Kafka cluster in {cluster.data_dir} (node{'s' if len(stopped) > 1 else ''} {', '.join(map(str, stopped))})")
    else:
        print(f"no node of the cluster in {cluster.data_dir} was running")
    return 0


def status_cluster(args: argparse.Namespace, cluster: LocalCluster) -> int:
    status = cluster.status(timeout=args.timeout or 5.0)
    for line in format_status(status):
        print(line)
    return 0 if len(status.answering) == len(status.nodes) else 1


def kill_node(args: argparse.Namespace) -> int:
    cluster = cluster_for_node_action(args)
    node = cluster.node(args.node)
    pid = node.pid
    if cluster.kill(args.node):
        print(f"killed node {args.node} (SIGKILL, pid {pid}, {node.bootstrap_servers}); the others elect new leaders for its partitions")
    else:
        print(f"node {args.node} of the cluster in {cluster.data_dir} was not running")
    return 0


def restart_node(args: argparse.Namespace) -> int:
    cluster = cluster_for_node_action(args)
    cluster.restart(args.node, timeout=args.timeout or 90.0)
    node = cluster.node(args.node)
    print(f"node {args.node} is up again at {node.bootstrap_servers} (pid {node.pid}, data: {node.data_dir})")
    return 0



def cluster_to_start(args: argparse.Namespace) -> LocalCluster | None:
    """The cluster ``start`` means: ``--brokers N`` (N > 1), or a ``--data-dir`` a cluster was started in."""
    if args.brokers == 1:
        return None
    if args.brokers is None:
        return _started_there(args) if args.data_dir is not None else None
    if getattr(args, "sasl", False):
        raise BrokerError("--sasl is for the single broker only; start the cluster without it")
    return _named_cluster(args) or LocalCluster(brokers=args.brokers)
