"""What a Kafka cluster says about itself: live brokers, the active controller, each partition's leader and replicas.

Read with kafka-python's admin client, from whichever node answers, so it
works while a node is down (that is when it matters). Pure data comes back
(frozen dataclasses), for the CLI's status, the replication lesson's tables
and its failover measurements.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .errors import BrokerError


@dataclass(frozen=True)
class PartitionState:
    """One partition as the cluster's metadata describes it; ``leader`` is None while it has none."""

    topic: str
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...] = ()

    @property
    def under_replicated(self) -> bool:
        """Fewer replicas in sync than assigned (a follower is down or behind)."""
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True)
class ClusterView:
    """The live brokers, the active KRaft controller and every partition of the topics asked for."""

    brokers: tuple[int, ...]
    controller: int | None
    partitions: tuple[PartitionState, ...]

    def led_by(self, node_id: int) -> tuple[PartitionState, ...]:
        return tuple(p for p in self.partitions if p.leader == node_id)

    def leaderless(self) -> tuple[PartitionState, ...]:
        return tuple(p for p in self.partitions if p.leader is None)


def partition_states(topic: str, raw_partitions: list[dict[str, Any]]) -> list[PartitionState]:
    """kafka-python's ``describe_topics()[i]["partitions"]`` dicts as PartitionState, by partition number."""
    states = [
        PartitionState(
            topic=topic,
            partition=int(raw["partition_index"]),
            leader=int(raw["leader_id"]) if raw.get("leader_id") is not None and int(raw["leader_id"]) >= 0 else None,
            replicas=tuple(int(node) for node in raw.get("replica_nodes") or ()),
            isr=tuple(sorted(int(node) for node in raw.get("isr_nodes") or ())),
            offline=tuple(int(node) for node in raw.get("offline_replicas") or ()),
        )
        for raw in raw_partitions
    ]
    return sorted(states, key=lambda state: state.partition)


class ClusterMetadata:
    """An admin connection kept open for repeated questions (a live view polls every fraction of a second).

    Use as a context manager, or call :meth:`close`. Each question is one
    Metadata request to a node that answers; kafka-python moves on to
    another node when the one it used dies.
    """

    def __init__(self, bootstrap_servers: str, timeout: float = 10.0, client_id: str = "orderlab-cluster-metadata") -> None:
        from kafka import KafkaAdminClient  # imported late: it is slow to import
        from kafka.errors import KafkaError

        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        try:
            self._admin = KafkaAdminClient(
                bootstrap_servers=bootstrap_servers,
                client_id=client_id,
                bootstrap_timeout_ms=int(timeout * 1000),
                request_timeout_ms=int(timeout * 1000),
                # A dead node is retried soon, not after kafka-python's default back-off.
                reconnect_backoff_max_ms=1000,
            )
        except (KafkaError, OSError) as err:
            raise BrokerError(f"no Kafka node answers at {bootstrap_servers} ({err})") from None

    def __enter__(self) -> "ClusterMetadata":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._admin.close()

    def _ask(self, what: str, call: Any) -> Any:
        """``call()`` retried until ``timeout``: a request to a node that just died fails once."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return call()
            except (KafkaError, OSError) as err:
                if time.monotonic() >= deadline:
                    raise BrokerError(f"could not read {what} from Kafka at {self.bootstrap_servers}: {err}") from None
                time.sleep(0.1)

    def partitions(self, topic: str) -> list[PartitionState]:
        """Every partition of ``topic``: leader, replicas, in-sync replicas (BrokerError if there is no such topic)."""
        described = self._ask(f"topic {topic!r}", lambda: self._admin.describe_topics([topic]))
        found = [entry for entry in described if entry.get("name") == topic]
        if not found or not found[0].get("partitions"):
            code = found[0].get("error_code") if found else None
            raise BrokerError(f"topic {topic!r} does not exist at {self.bootstrap_servers}" + (f" (error code {code})" if code else ""))
        return partition_states(topic, found[0]["partitions"])

    def leader(self, topic: str, partition: int) -> int | None:
        """The node that leads ``topic``'s partition now, or None while it has no leader."""
        for state in self.partitions(topic):
            if state.partition == partition:
                return state.leader
        raise BrokerError(f"topic {topic!r} has no partition {partition}")

    def brokers(self) -> tuple[int, ...]:
        """The node ids of the brokers that are alive (registered and not fenced)."""
        cluster = self._ask("the brokers", self._admin.describe_cluster)
        return tuple(sorted(int(broker["broker_id"]) for broker in cluster["brokers"]))

    def controller(self) -> int | None:
        """The active KRaft controller: the leader of the ``__cluster_metadata`` log (None during an election)."""
        quorum = self._ask("the controller quorum", self._admin.describe_metadata_quorum)
        for topic in quorum.get("topics", []):
            for partition in topic.get("partitions", []):
                leader = partition.get("leader_id")
                return int(leader) if leader is not None and int(leader) >= 0 else None
        return None

    def view(self, include_internal: bool = False) -> ClusterView:
        """Brokers, controller and the partitions of every topic (the internal ones too if asked)."""
        described = self._ask("the topics", lambda: self._admin.describe_topics())
        partitions: list[PartitionState] = []
        for entry in sorted(described, key=lambda entry: entry["name"]):
            if entry.get("is_internal") and not include_internal:
                continue
            partitions += partition_states(entry["name"], entry.get("partitions") or [])
        return ClusterView(brokers=self.brokers(), controller=self.controller(), partitions=tuple(partitions))


def describe_partitions(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[PartitionState]:
    """Every partition of ``topic`` (leader, replicas, in-sync replicas), asked once over a fresh connection."""
    with ClusterMetadata(bootstrap_servers, timeout) as metadata:
        return metadata.partitions(topic)
