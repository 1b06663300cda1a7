"""A fix for kafka-python 3.0.12's consumer group join, applied on import.

``KafkaConsumer.poll(timeout_ms=100)`` may time out while a rejoin is in
flight; the join is left running and the next poll is meant to pick up its
result. But when the rejoin was started by the group leader because its own
metadata changed (the usual case right after start-up: the first JoinGroup
goes out before the topic's metadata arrived, the leader assigns nothing and
rejoins when it does), the leader's new assignment clears the reason to
rejoin, ``need_rejoin()`` turns False, and nobody ever reads the join's
result: the member keeps heartbeats disabled, is removed from the group after
``session_timeout_ms`` and never rejoins. A role process then sits "idle"
forever, or keeps fetching partitions that were given to another member.

kafka-python 2.x avoided this by also checking for a pending join future
(dpkp/kafka-python#1695); this restores that check: a consumer still needs
to (re)join while a join it started has not been completed.
"""

from __future__ import annotations

from typing import Any

from kafka.coordinator.consumer import ConsumerCoordinator


def needs_rejoin(original_answer: bool, coordinator: Any) -> bool:
    """kafka-python's own answer, or a join this consumer started and nobody completed yet."""
    return original_answer or getattr(coordinator, "_join_task", None) is not None


def apply() -> None:
    """Patch ``ConsumerCoordinator.need_rejoin``; a second call (or a module reload) does nothing."""
    original = ConsumerCoordinator.need_rejoin
    if getattr(original, "orderlab_fixed", False):
        return

    def need_rejoin(self: ConsumerCoordinator) -> bool:
        return needs_rejoin(original(self), self)

    need_rejoin.orderlab_fixed = True  # type: ignore[attr-defined]
    ConsumerCoordinator.need_rejoin = need_rejoin  # type: ignore[method-assign]


apply()
