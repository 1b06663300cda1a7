"""``orderlab broker start|stop|status|kill|restart|fetch``: the local broker, or a local cluster, from a shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ..options import EXIT_FAILED, tcp_port
from ..settings import Settings, SettingsError, configured_bootstrap
from .config import DEMO_SASL_PASSWORD, DEMO_SASL_USER, KAFKA_VERSION, SASL_MECHANISMS, BrokerState
from .errors import BrokerError
from .jars import ensure_jars
from .cluster import DEFAULT_CLUSTER_PORT
from .cluster_cli import (
    cluster_for,
    cluster_to_start,
    kill_node,
    restart_node,
    start_cluster,
    status_cluster,
    stop_cluster,
)
from .local import LocalBroker
from .procs import LOCAL_HOSTS as _LOCAL_HOSTS, default_port  # noqa: F401 - default_port: re-exported

def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a number of brokers: {text!r}")
    return int(text)


def add_broker_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``broker`` with ``start``, ``stop``, ``status``, ``kill``, ``restart`` and ``fetch`` to a CLI's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port", type=tcp_port, default=None,
        help="PLAINTEXT port on 127.0.0.1 (default: the one last used with --data-dir, "
        f"else the port of KAFKA_BOOTSTRAP_SERVERS if that is local, else 9092); "
        f"a cluster's first port (default {DEFAULT_CLUSTER_PORT})",
    )  # fmt: skip
    common.add_argument(
        "--data-dir", type=Path, default=None,
        help="broker data (default: ~/.cache/orderlab/broker-<port>, a cluster's cluster-<port>)",
    )  # fmt: skip
    common.add_argument(
        "--timeout", type=float, default=None,
        help="seconds to wait (start: 60, a cluster 120; stop: 20, a cluster's nodes 15; status: 5; restart: 90)",
    )  # fmt: skip
    common.add_argument(
        "--brokers", type=_count, default=None,
        help="1: the single broker (start's default); 3: a local cluster of three KRaft nodes on ports from --port "
        f"(default {DEFAULT_CLUSTER_PORT}) up, data in ~/.cache/orderlab/cluster-<port>. stop and status find a "
        "running cluster without it",
    )  # fmt: skip

    broker = subparsers.add_parser(
        "broker", help=f"run a local Apache Kafka {KAFKA_VERSION} (Java 17+; Maven once)",
        description=f"A local Apache Kafka {KAFKA_VERSION} broker from Maven Central jars. "
        "Without Java, use `docker compose up -d kafka` instead.",
    )  # fmt: skip
    actions = broker.add_subparsers(dest="broker_action", metavar="{start,stop,status,kill,restart,fetch}", required=True)

    start = actions.add_parser("start", parents=[common], help="start the broker (fetches the jars the first time)")
    start.add_argument(
        "--sasl", action="store_true",
        help=f"also listen with SASL_PLAINTEXT ({', '.join(SASL_MECHANISMS)}) for the demo user {DEMO_SASL_USER!r}",
    )  # fmt: skip
    start.set_defaults(func=_run(_start))
    actions.add_parser("stop", parents=[common], help="stop the broker of that data dir (a cluster: every node)").set_defaults(
        func=_run(_stop)
    )
    actions.add_parser(
        "status", parents=[common], help="exit 0 if the broker (a cluster: every node) answers, else 1; a cluster's "
        "status lists each node, the active controller and the partitions each node leads",
    ).set_defaults(func=_run(_status))  # fmt: skip
    kill = actions.add_parser("kill", parents=[common], help="SIGKILL one node of the local cluster (a crash)")
    kill.add_argument("node", type=_count, help="the node's id: 1, 2 or 3 (node N listens on the first port + N - 1)")
    kill.set_defaults(func=_run(kill_node))
    restart = actions.add_parser("restart", parents=[common], help="start one node of the local cluster again on its data")
    restart.add_argument("node", type=_count, help="the node's id: 1, 2 or 3")
    restart.set_defaults(func=_run(restart_node))
    actions.add_parser("fetch", help="only fetch the Kafka jars into the cache").set_defaults(func=_run(_fetch))


def _run(action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn BrokerError into one line on stderr and exit code 1."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except BrokerError as err:
            print(f"orderlab broker: {err}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print("orderlab broker: interrupted", file=sys.stderr)
            return 130

    return handler


def broker_from_args(args: argparse.Namespace) -> LocalBroker:
    """--port wins; else the port last used in --data-dir; else the default port."""
    port = args.port
    if port is None and args.data_dir is not None:
        state = BrokerState.read(args.data_dir.expanduser().resolve())
        port = state.port if state else None
    if port is None:
        port = default_port(configured_bootstrap())
    return LocalBroker(args.data_dir, port, sasl=getattr(args, "sasl", False))


def _start(args: argparse.Namespace) -> int:
    cluster = cluster_to_start(args)
    if cluster is not None:
        return start_cluster(args, cluster)
    if args.port is None and args.data_dir is None:
        elsewhere = _answering_elsewhere(configured_bootstrap())
        if elsewhere is not None:
            print(elsewhere)
            return 0
    broker = broker_from_args(args)
    already = broker.is_running()
    if not already and broker.answers(timeout=2.0):
        print(f"Kafka already answers at {broker.bootstrap_servers} (not started from {broker.data_dir}): nothing to start")
        return 0
    broker.start(timeout=args.timeout or 60.0)
    verb = "was already up" if already else "is up"
    print(f"Kafka {KAFKA_VERSION} {verb} at {broker.bootstrap_servers} (data: {broker.data_dir}, log: {broker.log_path})")
    if broker.sasl_bootstrap_servers:
        print(
            f"SASL_PLAINTEXT at {broker.sasl_bootstrap_servers} ({', '.join(SASL_MECHANISMS)}); "
            f"local demo credential: user {DEMO_SASL_USER!r}, password {DEMO_SASL_PASSWORD!r}"
        )
    print(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}")
    return 0


def _answering_elsewhere(bootstrap_servers: str | None) -> str | None:
    """For a KAFKA_BOOTSTRAP_SERVERS that is not on this machine: a line saying it answers, or BrokerError.

    None when the address is local (or unset): then the local broker is the one to start.
    """
    first = (bootstrap_servers or "").split(",")[0].strip().split("://", 1)[-1]
    host = first.rpartition(":")[0]
    if not first or host in _LOCAL_HOSTS:
        return None
    from ..clients import BrokerUnavailable, check_broker

    try:
        check_broker(Settings(bootstrap_servers=bootstrap_servers or ""), timeout_s=5.0)
    except (BrokerUnavailable, SettingsError) as exc:
        raise BrokerError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers} is not on this machine and does not answer ({exc}); "
            "start that broker, or unset KAFKA_BOOTSTRAP_SERVERS to run a local one"
        ) from None
    return f"Kafka answers at {bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS): nothing to start here"


def _stop(args: argparse.Namespace) -> int:
    cluster = cluster_for(args, single_first=True)
    if cluster is not None:
        return stop_cluster(args, cluster)
    broker = broker_from_args(args)
    pid = broker.pid
    if broker.stop(timeout=args.timeout or 20.0):
        print(f"stopped Kafka at {broker.bootstrap_servers} (pid {pid}, data: {broker.data_dir})")
    else:
        print(f"no broker from {broker.data_dir} was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = cluster_for(args, single_first=True)
    if cluster is not None:
        return status_cluster(args, cluster)
    broker = broker_from_args(args)
    pid = broker.pid
    if broker.answers(timeout=args.timeout or 5.0):
        whose = f"pid {pid}, data: {broker.data_dir}" if pid else f"not started from {broker.data_dir}"
        print(f"Kafka answers at {broker.bootstrap_servers} ({whose})")
        return 0
    if pid:
        print(f"Kafka at {broker.bootstrap_servers} runs (pid {pid}) but does not answer; see {broker.log_path}")
    else:
        print(f"no Kafka answers at {broker.bootstrap_servers}")
    return 1


def _fetch(args: argparse.Namespace) -> int:
    libs = ensure_jars()
    print(f"Kafka {KAFKA_VERSION} jars are in {libs}")
    return 0
