"""What the local broker is: versions, demo credentials, rendered config files.

Everything here is pure (no Java, no sockets, no processes), so it can be unit
tested quickly; :mod:`orderlab.broker.local` does the side effects.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

POM_RESOURCE = "kafka-pom.xml"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_text() -> str:
    """The Maven pom shipped as package data (the single source of the versions)."""
    return resources.files(__package__).joinpath(POM_RESOURCE).read_text(encoding="utf-8")


def _kafka_version_from_pom(text: str) -> str:
    root = ET.fromstring(text)
    version = root.findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise RuntimeError(f"{POM_RESOURCE} has no <kafka.version> property")
    return version.strip()


KAFKA_VERSION: str = _kafka_version_from_pom(pom_text())

# A credential for the local demo broker only (127.0.0.1); the CLI prints it
# on purpose. Never reuse it anywhere real.
DEMO_SASL_USER = "orderlab"
DEMO_SASL_PASSWORD = "orderlab-demo-secret"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

HOST = "127.0.0.1"
STATE_FILE = "orderlab-broker.json"
CLUSTER_STATE_FILE = "orderlab-cluster.json"
SERVER_PROPERTIES = "server.properties"
LOG4J_PROPERTIES = "log4j2.properties"
BROKER_LOG = "broker.log"  # what Kafka logs (log4j)
CONSOLE_LOG = "broker.out"  # the JVM's stdout/stderr (crashes before log4j is up)
KAFKA_DATA = "kafka-data"  # log.dirs: topic partitions and the KRaft metadata log


def new_cluster_id() -> str:
    """A KRaft cluster id: base64url of 16 random bytes, without padding.

    Never starting with "-", which the storage tool's argument parser would
    take for an option (Kafka's own Uuid.randomUuid() avoids it the same way).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def scram_format_args(user: str = DEMO_SASL_USER, password: str = DEMO_SASL_PASSWORD) -> list[str]:
    """``kafka.tools.StorageTool format`` arguments that store SCRAM credentials.

    SCRAM credentials live in the cluster metadata, and the storage tool can
    only add them when formatting, so they are added to every data dir
    (whether or not it is started with SASL): turning ``sasl`` on later then
    works for SCRAM too, and without a SASL listener nobody can use them.
    """
    args: list[str] = []
    for mechanism in SCRAM_MECHANISMS:
        args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return args


def _escape(value: str) -> str:
    """Escape a value for a Java .properties file (backslashes, line breaks)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + out if out.startswith((" ", "\t")) else out


def render_properties(items: dict[str, str]) -> str:
    return "".join(f"{key}={_escape(str(value))}\n" for key, value in items.items())


# How often a local broker or cluster node looks for expired segments (see TUNING).
RETENTION_CHECK_INTERVAL_MS = 5000

# Settings every local node gets, single broker or cluster node.
TUNING: dict[str, str] = {
    # The default 3 s delays every first consumer group join.
    "group.initial.rebalance.delay.ms": "0",
    # The default takes 128 MB of heap for the log cleaner.
    "log.cleaner.dedupe.buffer.size": "2097152",
    # Lets tests and chaos scenarios use short session timeouts.
    "group.min.session.timeout.ms": "1000",
    # After a crash (kill) the restarted broker cannot register until the
    # controller lets the old registration expire (DUPLICATE_BROKER_REGISTRATION):
    # 9 s by default. In a cluster the same session is how long the controller
    # takes to notice a dead broker and elect new leaders for its partitions.
    # Heartbeats over 127.0.0.1 cost nothing.
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    # How often the broker deletes segments past their topic's retention.ms
    # (or retention.bytes): every 5 minutes by default, and it is a broker-wide
    # setting only, which no topic config overrides. Lesson 10 shows a segment
    # expire within a minute; one pass over a few hundred small logs is cheap.
    "log.retention.check.interval.ms": str(RETENTION_CHECK_INTERVAL_MS),
    # A node that has not registered with the controller quorum this long after
    # it started gives up and exits: 60 s by default, which three JVMs starting
    # together on a busy two-core machine overran (a lesson 09 cluster lost a
    # node 67 s into its start). Starting is bounded by the caller anyway.
    "initial.broker.registration.timeout.ms": "180000",
}


@dataclass(frozen=True)
class BrokerConfig:
    """One single-node KRaft broker (broker and controller in one JVM) on 127.0.0.1."""

    data_dir: Path
    port: int
    controller_port: int
    sasl_port: int | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / KAFKA_DATA

    def server_properties(self) -> dict[str, str]:
        listeners = [f"PLAINTEXT://{HOST}:{self.port}", f"CONTROLLER://{HOST}:{self.controller_port}"]
        advertised = [f"PLAINTEXT://{HOST}:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        if self.sasl_port is not None:
            listeners.append(f"SASL_PLAINTEXT://{HOST}:{self.sasl_port}")
            advertised.append(f"SASL_PLAINTEXT://{HOST}:{self.sasl_port}")
            protocols.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "controller.listener.names": "CONTROLLER",
            # Inter-broker traffic stays on PLAINTEXT, so SASL is only for clients.
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            # A static voter (not --standalone) keeps the controller address out of
            # the formatted data, so the port is only a setting.
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            # Internal topics default to 50 partitions and 3 replicas.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            **TUNING,
            # A lone broker has nobody to hand its partitions to: its controlled
            # shutdown only makes every partition leaderless for a moment, and
            # Kafka 4.4's transaction coordinator takes a partition without a
            # leader for a deleted one and skips its COMMIT marker. A transaction
            # committed in that moment then hangs: its records stay invisible to
            # read_committed readers and hold up the partition (issue 14). A plain
            # SIGTERM shutdown still flushes the logs, and on restart the
            # coordinator writes the markers of a commit it had not finished.
            # (A cluster keeps controlled shutdown: there a follower takes over.)
            "controlled.shutdown.enable": "false",
        }
        if self.sasl_port is not None:
            prefix = "listener.name.sasl_plaintext."
            props[prefix + "sasl.enabled.mechanisms"] = ",".join(SASL_MECHANISMS)
            props[prefix + "plain.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{DEMO_SASL_USER}="{DEMO_SASL_PASSWORD}";'
            )
            for mechanism in SCRAM_MECHANISMS:
                props[prefix + f"{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        return props

    def render_server_properties(self) -> str:
        header = f"# Written by orderlab for a local Apache Kafka {KAFKA_VERSION}; rewritten on every start.\n"
        return header + render_properties(self.server_properties())

    def render_log4j2(self) -> str:
        return render_log4j2(self.data_dir)


# What makes a cluster node's data survive the loss of one node: three copies
# of everything, and a write with acks=all is accepted while two are in sync.
CLUSTER_REPLICATION_FACTOR = 3
CLUSTER_MIN_INSYNC_REPLICAS = 2
# Internal topics: one partition per node (the default 50 would be 150
# replica logs to open and to elect leaders for at every start).
CLUSTER_INTERNAL_PARTITIONS = 3


@dataclass(frozen=True)
class ClusterNodeConfig:
    """One node of a local KRaft cluster on 127.0.0.1: a broker and a controller (a quorum voter) in one JVM.

    ``controller_ports[i]`` is node ``i + 1``'s controller port; every node
    lists every voter, so the quorum is static (formatted without
    ``--standalone``) and the ports are only settings.
    """

    data_dir: Path
    node_id: int
    port: int
    controller_ports: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.node_id <= len(self.controller_ports):
            raise ValueError(f"node_id {self.node_id} is not one of the {len(self.controller_ports)} voters")

    @property
    def log_dir(self) -> Path:
        return self.data_dir / KAFKA_DATA

    @property
    def controller_port(self) -> int:
        return self.controller_ports[self.node_id - 1]

    def server_properties(self) -> dict[str, str]:
        replicas = str(min(CLUSTER_REPLICATION_FACTOR, len(self.controller_ports)))
        min_isr = str(min(CLUSTER_MIN_INSYNC_REPLICAS, len(self.controller_ports)))
        voters = ",".join(f"{node}@{HOST}:{port}" for node, port in enumerate(self.controller_ports, start=1))
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": voters,
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": str(CLUSTER_INTERNAL_PARTITIONS),
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": str(CLUSTER_INTERNAL_PARTITIONS),
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "share.coordinator.state.topic.num.partitions": str(CLUSTER_INTERNAL_PARTITIONS),
            **TUNING,
        }

    def render_server_properties(self) -> str:
        header = (
            f"# Written by orderlab for node {self.node_id} of a local Apache Kafka {KAFKA_VERSION} cluster; "
            "rewritten on every start.\n"
        )
        return header + render_properties(self.server_properties())


def render_log4j2(data_dir: Path) -> str:
    """log4j2 settings: everything to ``<data_dir>/broker.log``, rolled at 20 MB, 3 files kept."""
    log = data_dir / BROKER_LOG
    return render_properties(
        {
            "status": "warn",
            # Kafka logs its own shutdown from a JVM shutdown hook; log4j's
            # hook would stop logging half-way through it.
            "shutdownHook": "disable",
            "appender.file.type": "RollingFile",
            "appender.file.name": "file",
            "appender.file.fileName": str(log),
            "appender.file.filePattern": f"{log}.%i",
            "appender.file.layout.type": "PatternLayout",
            "appender.file.layout.pattern": "[%d] %p %m (%c)%n",
            "appender.file.policies.type": "Policies",
            "appender.file.policies.size.type": "SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size": "20MB",
            "appender.file.strategy.type": "DefaultRolloverStrategy",
            "appender.file.strategy.max": "3",
            "rootLogger.level": "INFO",
            "rootLogger.appenderRef.file.ref": "file",
            # The per-request and state-change chatter is not worth keeping.
            "logger.request.name": "kafka.request.logger",
            "logger.request.level": "WARN",
            "logger.statechange.name": "state.change.logger",
            "logger.statechange.level": "WARN",
        }
    )


@dataclass(frozen=True)
class BrokerState:
    """What ``start`` remembers in ``<data_dir>/orderlab-broker.json``.

    The ports stay here after a stop, so a restart reuses them (clients and
    the KRaft quorum find the broker where they left it). ``sasl_port`` is
    remembered even when the broker runs without SASL; ``sasl`` says whether
    the running (or last) broker listens on it.
    """

    port: int
    controller_port: int
    sasl_port: int | None = None
    sasl: bool = False
    pid: int | None = None
    kafka_version: str = KAFKA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "BrokerState":
        raw = json.loads(text)
        return cls(
            port=int(raw["port"]),
            controller_port=int(raw["controller_port"]),
            sasl_port=None if raw.get("sasl_port") is None else int(raw["sasl_port"]),
            sasl=bool(raw.get("sasl", False)),
            pid=None if raw.get("pid") is None else int(raw["pid"]),
            kafka_version=str(raw.get("kafka_version", KAFKA_VERSION)),
        )

    def write(self, data_dir: Path) -> None:
        """Write atomically, so a reader never sees half a file."""
        target = data_dir / STATE_FILE
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def read(cls, data_dir: Path) -> "BrokerState | None":
        """The saved state, or None when there is none (or it is unreadable)."""
        try:
            return cls.from_json((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class ClusterState:
    """What a cluster's first start remembers in ``<cluster dir>/orderlab-cluster.json``.

    Fixed for the cluster's life: the nodes' ports (node N listens on
    ``first_port + N - 1``), the controller ports every node's voter list
    names, the cluster id every node's storage is formatted with, and the
    heap, so a node restarted from another process matches the others. Each
    node's pid is in its own folder's ``orderlab-broker.json``.
    """

    first_port: int
    controller_ports: tuple[int, ...]
    cluster_id: str
    heap_mb: int
    kafka_version: str = KAFKA_VERSION

    @property
    def brokers(self) -> int:
        return len(self.controller_ports)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ClusterState":
        raw = json.loads(text)
        return cls(
            first_port=int(raw["first_port"]),
            controller_ports=tuple(int(port) for port in raw["controller_ports"]),
            cluster_id=str(raw["cluster_id"]),
            heap_mb=int(raw["heap_mb"]),
            kafka_version=str(raw.get("kafka_version", KAFKA_VERSION)),
        )

    def write(self, cluster_dir: Path) -> None:
        target = cluster_dir / CLUSTER_STATE_FILE
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def read(cls, cluster_dir: Path) -> "ClusterState | None":
        """The saved state, or None when there is none (or it is unreadable)."""
        try:
            return cls.from_json((cluster_dir / CLUSTER_STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None
