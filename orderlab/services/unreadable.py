"""Records the Kafka client cannot read: finding where they are, so a role can step over them.

kafka-python 3.0.12 parses every record of a fetched batch before handing
any over. A record it cannot parse (a header key that is not UTF-8, a batch
that fails its CRC) makes ``poll()`` raise ``CorruptRecordError`` without
saying which partition or offset; and the same consumer's next ``poll()``
then loops forever inside kafka-python, unless its position on that partition
was moved first (seen with 3.0.12 against Kafka 4.4: a role's thread spun
there and could not even be stopped). Parsing is sequential within a batch,
so the records after the bad one in its batch cannot be read either.

:func:`find_unreadable` finds them: it reads each of the worker's partitions
from the worker's position with a short-lived consumer of no group, one
record at a time; a position where that raises holds an unreadable record,
and so does each following one that raises too. The worker then
dead-letters them (an :class:`UnreadableRecord` stands in for each in its
batch) and moves past them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CorruptRecordError, KafkaError

from ..clients import describe_kafka_error, make_consumer
from ..settings import Settings

log = logging.getLogger(__name__)

PROBE_WAIT_S = 5.0  # how long one position may take to answer before it counts as not known


@dataclass(frozen=True)
class UnreadableRecord:
    """Stands in, in a batch, for a record the client cannot read: where it is, and why.

    It has what the batch code reads of a record (topic, partition, offset,
    key, value); the key and value are unknown.
    """

    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None = None
    value: bytes | None = None


def may_be_a_record(exc: BaseException) -> bool:
    """Whether an error from ``poll()`` may come from a record the client cannot parse.

    ``CorruptRecordError`` says so; any error that is not a ``KafkaError``
    (kafka-python's own parsing raising ``ValueError``, ``UnicodeDecodeError``...)
    may too. A ``KafkaError`` of another kind is about the broker.
    """
    return isinstance(exc, CorruptRecordError) or (isinstance(exc, Exception) and not isinstance(exc, KafkaError))


def find_unreadable(settings: Settings, consumer: KafkaConsumer) -> list[UnreadableRecord]:
    """Every unreadable record at the positions of ``consumer``'s partitions (and right after them).

    Empty when every position reads (the error was not about a record, or
    went away). The probe reads as the worker does (the isolation level comes
    from ``settings``), one record batch per fetch.
    """
    positions = _positions(consumer)
    if not positions:
        return []
    probe = make_consumer(settings, None, max_partition_fetch_bytes=1)
    try:
        ends = probe.end_offsets(list(positions))
        found: list[UnreadableRecord] = []
        for tp, position in sorted(positions.items()):
            found.extend(_unreadable_from(probe, tp, position, ends.get(tp, 0)))
        return found
    finally:
        probe.close(autocommit=False)


def _positions(consumer: KafkaConsumer) -> dict[TopicPartition, int]:
    positions: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        try:
            position = consumer.position(tp, timeout_ms=1000)
        except (KafkaError, ValueError):  # revoked meanwhile, or not known yet
            continue
        if position is not None:
            positions[tp] = position
    return positions


def _unreadable_from(probe: KafkaConsumer, tp: TopicPartition, position: int, end: int) -> list[UnreadableRecord]:
    """The unreadable records of ``tp`` from ``position`` on, up to the first record that reads."""
    probe.assign([tp])
    found: list[UnreadableRecord] = []
    first_error = ""
    offset = position
    while offset < end:
        error = _read_one(probe, tp, offset)
        if error is None:
            break
        why = describe_kafka_error(error)
        if found:  # kafka-python reads a record batch in order: it stops where the first one failed
            why = f"it stops at offset {found[0].offset}, before this one in its record batch: {why}"
        else:
            first_error = why
        found.append(UnreadableRecord(tp.topic, tp.partition, offset, f"the Kafka client cannot read this record ({why})"))
        offset += 1  # each seek moves the probe's position: its next poll does not loop
    if found:
        log.warning("%s[%d]: the Kafka client cannot read offset(s) %d-%d (%s); they go to the dead-letter topic",
                    tp.topic, tp.partition, found[0].offset, found[-1].offset, first_error)
    return found


def _read_one(probe: KafkaConsumer, tp: TopicPartition, offset: int) -> BaseException | None:
    """The error reading the record at ``offset`` raises; None when it reads (or nothing comes within the wait)."""
    probe.seek(tp, offset)
    deadline = time.monotonic() + PROBE_WAIT_S
    while time.monotonic() < deadline:
        try:
            if probe.poll(timeout_ms=200, max_records=1):
                return None
        except Exception as exc:  # noqa: BLE001 - whatever the client raises on this record is the reason
            if not may_be_a_record(exc):
                return None  # the broker, not the record: no verdict
            return exc
    return None
