"""A commit that failed (the broker restarting) is sent again once the role is idle, so a caught-up
role does not show its last batch as lag until the next batch comes."""

from __future__ import annotations

from typing import Any, Callable

from kafka import TopicPartition
from kafka.errors import KafkaConnectionError
from kafka.structs import OffsetAndMetadata

from orderlab.services import commits
from orderlab.services.base import Counters
from orderlab.services.commits import OffsetCommitter

TP = TopicPartition("order_details-unit", 0)


class Consumer:
    """A stand-in consumer at ``position``, whose asynchronous commits are answered by ``answer``."""

    def __init__(self, position: int) -> None:
        self.at = position
        self.committed: list[int] = []
        self.answer: Callable[[], BaseException | None] = lambda: None

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self.at

    def commit_async(self, offsets: dict[TopicPartition, OffsetAndMetadata], callback: Callable[[Any, Any], None]) -> None:
        result = self.answer()
        if result is None:
            self.committed.append(offsets[TP].offset)
        callback(offsets, result if result is not None else {})


def test_an_idle_role_commits_again_what_failed_and_nothing_more(monkeypatch) -> None:  # noqa: ANN001
    clock = [100.0]
    monkeypatch.setattr(commits.time, "monotonic", lambda: clock[0])
    consumer = Consumer(position=40)
    counters = Counters("commits", "commit_failures")
    committer = OffsetCommitter(consumer, counters, "analytics")  # type: ignore[arg-type]

    consumer.answer = lambda: KafkaConnectionError("111 ECONNREFUSED")
    committer.commit({TP: OffsetAndMetadata(40, "", -1)})  # the last batch, as the broker goes away
    committer.commit_skipped()  # idle while it is away: tried again, fails again
    assert consumer.committed == [] and counters["commit_failures"] == 2
    committer.commit_skipped()  # at most once a second
    assert counters["commit_failures"] == 2

    consumer.answer = lambda: None  # back
    clock[0] += commits.RECOMMIT_EVERY_S
    committer.commit_skipped()
    assert consumer.committed == [40] and counters["commits"] == 1
    clock[0] += commits.RECOMMIT_EVERY_S
    committer.commit_skipped()  # confirmed now: nothing to send again
    assert consumer.committed == [40]


def test_an_older_commit_failing_after_a_newer_one_was_sent_is_not_sent_again() -> None:
    consumer = Consumer(position=50)
    committer = OffsetCommitter(consumer, Counters("commits", "commit_failures"), "email")  # type: ignore[arg-type]
    committer.commit({TP: OffsetAndMetadata(50, "", -1)})
    committer._answered({TP: OffsetAndMetadata(40, "", -1)}, KafkaConnectionError("late answer"))  # noqa: SLF001
    committer.commit_skipped()
    assert consumer.committed == [50]
