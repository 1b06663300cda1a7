"""Lesson 08's exercises: the offsets a transaction commits, and the aborted records only some readers see."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Iterable, Mapping

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from . import NotYet, exercise

_Record = namedtuple("_Record", "topic partition offset")
_BATCH = [_Record("order_details-lesson08-1a2b3c4d", 0, 7), _Record("order_details-lesson08-1a2b3c4d", 0, 8),
          _Record("order_details-lesson08-1a2b3c4d", 3, 2)]


def _records(batch: Any) -> list[Any]:
    """A batch as a list of records: a poll's ``{partition: [records]}`` or the records themselves."""
    if isinstance(batch, Mapping):
        return [record for records in batch.values() for record in records]
    return list(batch)


def _next_offsets(batch: Iterable[Any]) -> dict[TopicPartition, int]:
    found: dict[TopicPartition, int] = {}
    for record in _records(batch):
        tp = TopicPartition(record.topic, record.partition)
        found[tp] = max(found.get(tp, 0), record.offset + 1)
    return found


def _as_offsets(answer: Any, topic: str) -> dict[TopicPartition, int]:
    """The answer as ``{TopicPartition: offset}``: keys may be TopicPartitions or partition numbers, values
    OffsetAndMetadata or whole numbers."""
    if not isinstance(answer, Mapping):
        raise NotYet(f"give a dict {{TopicPartition: OffsetAndMetadata(offset, '', -1)}}, not a {type(answer).__name__}")
    offsets: dict[TopicPartition, int] = {}
    for key, value in answer.items():
        tp = key if isinstance(key, TopicPartition) else TopicPartition(topic, key) if isinstance(key, int) else None
        offset = value.offset if isinstance(value, OffsetAndMetadata) else value
        if tp is None or isinstance(offset, bool) or not isinstance(offset, int):
            raise NotYet("each key is a TopicPartition(topic, partition) and each value an "
                         f"OffsetAndMetadata(offset, '', -1); {key!r}: {value!r} is not")
        offsets[tp] = offset
    return offsets


@exercise(
    "08.offsets_to_commit",
    hint="for each partition in the batch, find its last record's offset; the offset to commit is the next record "
         "the group should read",
    facts={"batch": _BATCH},
    wrong={TopicPartition(_BATCH[0].topic, 0): OffsetAndMetadata(8, "", -1),
           TopicPartition(_BATCH[0].topic, 3): OffsetAndMetadata(2, "", -1)},
    solution=lambda batch: {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in _next_offsets(batch).items()},
)
def offsets_to_commit(answer: Any, *, batch: Any) -> str:
    """``batch``: the records of one poll (``{partition: [records]}`` or a list)."""
    expected = _next_offsets(batch)
    if not expected:
        raise NotYet("the batch is empty: poll one with records first")
    topic = next(iter(expected)).topic
    given = _as_offsets(answer, topic)
    if given == expected:
        return ("one past the last record of each partition: the committed offset is where the group reads on, "
                "so a restart neither reads the batch again nor skips a record")
    if set(given) != set(expected):
        missing = sorted(tp.partition for tp in set(expected) - set(given))
        extra = sorted(tp.partition for tp in set(given) - set(expected))
        raise NotYet("the offsets are per partition of the batch: "
                     + (f"partition(s) {missing} missing" if missing else "") + ("; " if missing and extra else "")
                     + (f"partition(s) {extra} have no record in this batch" if extra else ""))
    if all(given[tp] == expected[tp] - 1 for tp in expected):
        raise NotYet("those are the offsets of the last records: a group commits the offset of the next record to read")
    raise NotYet("some offsets are not one past their partition's last record in the batch")


@exercise(
    "08.aborted_confirmations",
    hint="read the lesson's order_confirmed topic with two plain KafkaConsumers, one with "
         "isolation_level='read_uncommitted' and one with 'read_committed', and subtract their counts",
    facts={"uncommitted": 37, "committed": 30, "aborted_on_both_topics": 10},
    wrong=10,
    solution=lambda uncommitted, committed, aborted_on_both_topics: uncommitted - committed,
)
def aborted_confirmations(answer: Any, *, uncommitted: int, committed: int, aborted_on_both_topics: int) -> str:
    """``uncommitted``/``committed``: order_confirmed's records as the two kinds of reader count them."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give a number of records, a whole number, not a {type(answer).__name__}")
    aborted = uncommitted - committed
    if answer == aborted:
        return ("the confirmations of aborted transactions are in the log: a read_uncommitted reader gets them, "
                "a read_committed reader skips them")
    if answer == aborted_on_both_topics and aborted != aborted_on_both_topics:
        raise NotYet("that counts order_declined's aborted records too; the question is about order_confirmed alone")
    if answer in (uncommitted, committed):
        raise NotYet("that is what one of the readers counts; the question is how many more one sees than the other")
    raise NotYet(f"{answer} is not it: order_confirmed read_uncommitted, minus order_confirmed read_committed")
