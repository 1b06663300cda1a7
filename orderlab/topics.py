"""Creating the topics the pipeline uses (idempotent)."""

from __future__ import annotations

import time

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from .clients import make_admin
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
        existing = set(admin.list_topics())
        absent = [name for name in plan if name not in existing]
        if absent:
            copies = replication_factor(len(admin.describe_cluster()["brokers"]))
            missing = [NewTopic(name, plan[name], copies) for name in absent]
            try:
                admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                pass  # another process made it between our list and create
        deadline = time.monotonic() + timeout_s
        while set(plan) - set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not visible after {timeout_s:.0f} s: {sorted(set(plan) - set(admin.list_topics()))}")
            time.sleep(0.1)
    finally:
        admin.close()
    return plan


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
