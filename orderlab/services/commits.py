"""Committing a consumer role's offsets: after the work, without waiting, and once more on a clean stop.

One :class:`OffsetCommitter` per consumer (so per thread); it remembers the
last offsets it was asked to commit per partition, which is what a clean
stop commits synchronously and what the idle step compares positions with.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from .base import Counters

log = logging.getLogger(__name__)

FINAL_COMMIT_TIMEOUT_MS = 5_000


class OffsetCommitter:
    """Commits for one consumer; counts ``commits`` and ``commit_failures`` in ``counters``."""

    def __init__(self, consumer: KafkaConsumer, counters: Counters, name: str) -> None:
        self.consumer = consumer
        self.counters = counters
        self.name = name
        self.last: dict[TopicPartition, OffsetAndMetadata] = {}  # the latest sent to be committed, per partition

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit a finished batch's offsets without waiting for the answer.

        The batch's work is done and its output acknowledged by now, so
        at-least-once holds whenever the commit lands; a commit that fails
        (the group rebalanced) only means the batch is read again. Not
        waiting saves a round trip per batch, which at a low rate was the
        longest step of a batch and held up the next order. :meth:`commit_last`
        commits the last offsets once more, synchronously, so a role stopped
        cleanly leaves nothing to read again.
        """
        self.last.update(offsets)
        try:
            self.consumer.commit_async(offsets, callback=self._answered)
        except KafkaError as exc:
            self.failed(exc)

    def _answered(self, _offsets: Any, result: Any) -> None:
        """kafka-python's answer to an asynchronous commit (called on its network thread)."""
        if isinstance(result, BaseException):
            self.failed(result)
        else:
            self.counters.add("commits")

    def failed(self, exc: BaseException) -> None:
        # The group rebalanced under us: the new owner reads these records
        # again, which the idempotent work below us tolerates.
        """Count a commit that did not land, and say why in the log (the batch will be read again)."""
        self.counters.add("commit_failures")
        log.info("%s: commit failed (%s); the batch will be redelivered", self.name, exc)

    def commit_skipped(self) -> None:
        """Commit each partition's position where it moved past the last committed offset.

        Only records never given to us lie there: transaction markers and
        aborted records, which ``read_committed`` readers step over on an
        empty poll. Committing "last record + 1" alone stops short of the
        last marker, so a caught-up reader of a transactional topic would
        show a lag of one per partition forever.
        """
        skipped: dict[TopicPartition, OffsetAndMetadata] = {}
        assigned = self.consumer.assignment()
        for tp, last in self.last.items():
            if tp not in assigned:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=0)
            except KafkaError:
                continue
            if position is not None and position > last.offset:
                skipped[tp] = OffsetAndMetadata(position, "", -1)
        if skipped:
            self.commit(skipped)

    def commit_last(self) -> None:
        """On a clean stop: wait (bounded) for the last offsets of the partitions still assigned to be committed."""
        assigned = self.consumer.assignment()
        last = {tp: offset for tp, offset in self.last.items() if tp in assigned}
        if not last:
            return
        try:
            self.consumer.commit(last, timeout_ms=FINAL_COMMIT_TIMEOUT_MS)  # bounded: the broker may be away
        except (CommitFailedError, KafkaError) as exc:
            self.failed(exc)
