"""What a consumer role's batch is made of: decoded records with where they
came from, and the offsets to seek back to or to commit after them.

Pure functions over kafka-python's records (anything with ``topic``,
``partition`` and ``offset``), so they are tested without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Iterable, TypeVar

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

Event = TypeVar("Event")


@dataclass(frozen=True)
class Received(Generic[Event]):
    """A decoded record with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: Event
    # the record's value as read; the e-mail role hands it to the SMTP relay's
    # child, which decodes and composes there (see mail.compose.Confirmation)
    value: bytes | None = None


def first_offsets(records: Iterable[Any]) -> dict[TopicPartition, int]:
    """Where each partition of ``records`` starts: the offsets to seek to to read them again."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first


def next_offsets(records: Iterable[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit after ``records``: one past the last of each partition."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        current = offsets.get(tp)
        if current is None or record.offset + 1 > current.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets
