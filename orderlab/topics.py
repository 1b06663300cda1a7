"""Creating the topics the pipeline uses (idempotent)."""

from __future__ import annotations

from typing import Mapping

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from .clients import make_admin
from .polling import poll_until
from .settings import Settings
from .topology import load_topology

# Three copies survive the loss of any one broker (with min.insync.replicas=2
# an acks=all write still succeeds then); more would only cost disk and traffic.
MAX_REPLICATION_FACTOR = 3


def replication_factor(live_brokers: int) -> int:
    """How many copies of each partition to ask for: 1 on a single broker, 3 on a cluster of 3 or more."""
    return max(1, min(MAX_REPLICATION_FACTOR, live_brokers))


def topic_plan(settings: Settings) -> dict[str, int]:
    """Every topic of the configured topology, with its partition count.

    ``order_details`` has several partitions so the transactions role can
    scale out inside one consumer group; dead-letter topics need only one.
    """
    return load_topology(settings.topology).topic_plan(settings)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create whatever topic of :func:`topic_plan` is missing and wait until all are known.

    New topics get :func:`replication_factor` copies for the brokers that
    are alive now (existing topics are left as they are).
    """
    plan = topic_plan(settings)
    admin = make_admin(settings)
    try:
        create_missing_topics(admin, plan, timeout_s=timeout_s)
    finally:
        admin.close()
    return plan


def create_missing_topics(admin: KafkaAdminClient, partitions: Mapping[str, int], *, timeout_s: float = 30.0,
                          configs: Mapping[str, str] | None = None) -> None:
    """Create each topic of ``partitions`` (name → partition count) that is missing, then wait until all are known.

    New topics get :func:`replication_factor` copies for the brokers alive
    now, and ``configs``; existing ones are left as they are. A topic another
    client makes between our list and our create counts as made.
    """
    existing = set(admin.list_topics())
    absent = [name for name in partitions if name not in existing]
    if absent:
        copies = replication_factor(len(admin.describe_cluster()["brokers"]))
        new = [NewTopic(name, partitions[name], copies, topic_configs=dict(configs or {})) for name in absent]
        try:
            admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
        except TopicAlreadyExistsError:
            pass
    poll_until(lambda: not set(partitions) - set(admin.list_topics()), timeout_s,
               f"topics {', '.join(sorted(partitions))} becoming visible")


def delete_topics(settings: Settings) -> None:
    """Remove this suffix's topics (used to reset a lab between classes)."""
    admin = make_admin(settings)
    try:
        present = set(admin.list_topics())
        doomed = [name for name in topic_plan(settings) if name in present]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
