"""Consumer lag per group: how many records a group still has to read."""

from __future__ import annotations

import threading

from kafka import KafkaAdminClient, TopicPartition

from .clients import make_admin, make_consumer
from .settings import Settings


class LagMeter:
    """Measures lag with one admin client and one group-less consumer.

    Safe to call from any thread (the clients are used under a lock).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._reader = None

    def lag(self, groups: dict[str, tuple[str, ...]]) -> dict[str, int]:
        """``{group: records not yet committed}`` for groups and the topics they read."""
        with self._lock:
            if self._admin is None:
                self._admin = make_admin(self.settings)
                self._reader = make_consumer(self.settings, None)
            wanted: dict[str, list[TopicPartition]] = {}
            for group, topics in groups.items():
                wanted[group] = [
                    TopicPartition(topic, partition)
                    for topic in topics
                    for partition in sorted(self._reader.partitions_for_topic(topic) or ())
                ]
            every_tp = sorted({tp for tps in wanted.values() for tp in tps})
            if not every_tp:
                return dict.fromkeys(groups, 0)
            end = self._reader.end_offsets(every_tp)
            # one OffsetFetch for all groups (Kafka 3.0+)
            committed = self._admin.list_group_offsets({g: tps for g, tps in wanted.items() if tps})
            result: dict[str, int] = {}
            for group, tps in wanted.items():
                offsets = committed.get(group, {})
                result[group] = sum(max(0, end[tp] - max(0, offsets[tp].offset if tp in offsets else 0)) for tp in tps)
            return result

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            if self._reader is not None:
                self._reader.close(autocommit=False)
                self._reader = None
