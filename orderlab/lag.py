"""Consumer lag per group: how many records a group still has to read."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping

from kafka import KafkaAdminClient, TopicPartition

from .clients import make_admin, make_consumer
from .settings import Settings


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition as one group sees it: its committed offset (-1: nothing committed yet) and the log's end."""

    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Records the group has not committed yet (from the start of the log when it committed nothing)."""
        return max(0, self.end - max(0, self.committed))


# {group: {partition: its offsets}}: what one reading of the lag meter returns
GroupOffsets = dict[str, dict[TopicPartition, PartitionOffsets]]


def group_lag(offsets: Mapping[str, Mapping[TopicPartition, PartitionOffsets]]) -> dict[str, int]:
    """``{group: records not yet committed}``: each group's partitions added up."""
    return {group: sum(partition.lag for partition in partitions.values()) for group, partitions in offsets.items()}


class LagMeter:
    """Measures lag with one admin client and one group-less consumer.

    A reading is one end-offsets request for every partition of every topic
    asked about and one OffsetFetch for all groups. Safe to call from any
    thread (the clients are used under a lock).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._reader = None

    def lag(self, groups: dict[str, tuple[str, ...]]) -> dict[str, int]:
        """``{group: records not yet committed}`` for groups and the topics they read."""
        return group_lag(self.offsets(groups))

    def offsets(self, groups: dict[str, tuple[str, ...]]) -> GroupOffsets:
        """``{group: {partition: committed and end offsets}}`` for groups and the topics they read.

        Every partition of those topics is there, also those a group has
        committed nothing on (``committed`` -1); a topic that does not exist
        has none.
        """
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
                return {group: {} for group in groups}
            end = self._reader.end_offsets(every_tp)
            # one OffsetFetch for all groups (Kafka 3.0+)
            committed = self._admin.list_group_offsets({g: tps for g, tps in wanted.items() if tps})
            result: GroupOffsets = {}
            for group, tps in wanted.items():
                found = committed.get(group, {})
                result[group] = {
                    tp: PartitionOffsets(found[tp].offset if tp in found else -1, end[tp]) for tp in tps
                }
            return result

    def close(self) -> None:
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            if self._reader is not None:
                self._reader.close(autocommit=False)
                self._reader = None
