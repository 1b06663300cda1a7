"""Committing a consumer role's offsets: after the work, without waiting, and once more on a clean stop.

One :class:`OffsetCommitter` per consumer (so per thread); it remembers the
last offsets it was asked to commit per partition, which is what a clean
stop commits synchronously and what the idle step compares positions with.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from .base import Counters

log = logging.getLogger(__name__)

FINAL_COMMIT_TIMEOUT_MS = 5_000
RECOMMIT_EVERY_S = 1.0  # a failed commit is sent again when idle, at most this often (the broker may still be away)


class OffsetCommitter:
    """Commits for one consumer; counts ``commits`` and ``commit_failures`` in ``counters``."""

    def __init__(self, consumer: KafkaConsumer, counters: Counters, name: str) -> None:
        self.consumer = consumer
        self.counters = counters
        self.name = name
        self.last: dict[TopicPartition, OffsetAndMetadata] = {}  # the latest sent to be committed, per partition
        # partitions whose latest commit failed (kafka-python answers on its own thread, hence the lock)
        self._unconfirmed: set[TopicPartition] = set()
        self._unconfirmed_lock = threading.Lock()
        self._recommitted_at = 0.0

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
            self._answered(offsets, exc)

    def _answered(self, offsets: Any, result: Any) -> None:
        """kafka-python's answer to an asynchronous commit (called on its network thread)."""
        failed = isinstance(result, BaseException)
        with self._unconfirmed_lock:
            for tp, offset in dict(offsets or {}).items():
                if not failed:
                    self._unconfirmed.discard(tp)
                elif self.last.get(tp) == offset:  # the latest commit of the partition, not an older one
                    self._unconfirmed.add(tp)
        if failed:
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

        A partition whose latest commit failed (the broker restarting) is
        committed again here too: a role whose last batch before a quiet
        spell was not committed showed that batch as lag until the next one.
        """
        skipped: dict[TopicPartition, OffsetAndMetadata] = {}
        assigned = self.consumer.assignment()
        unconfirmed: set[TopicPartition] = set()
        if time.monotonic() - self._recommitted_at >= RECOMMIT_EVERY_S:
            with self._unconfirmed_lock:
                unconfirmed = set(self._unconfirmed)
        for tp, last in self.last.items():
            if tp not in assigned:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=0)
            except KafkaError:
                continue
            if position is not None and (position > last.offset or (position == last.offset and tp in unconfirmed)):
                skipped[tp] = OffsetAndMetadata(position, "", -1)
        if skipped:
            if unconfirmed:
                self._recommitted_at = time.monotonic()
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
