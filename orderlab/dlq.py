"""Dead-letter routing: a record that cannot be read goes to ``<topic>.dlq``
with the reason and where it came from in its headers. Nothing is dropped
silently, and the role that found it keeps going.

A dead letter is for a person to read, and it must always be small enough to
send: a key or value beyond :data:`MAX_DEAD_LETTER_KEY_BYTES` /
:data:`MAX_DEAD_LETTER_VALUE_BYTES` is cut to that many bytes (its original
size is in the headers), and so is a long reason. A 5 MB record copied whole
was refused by the producer (``MessageSizeTooLargeError``) on every try, and
the role stopped on it. A record the client could not even read is
dead-lettered with no key and no value, only the reason and its position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

from .settings import Settings

REASON = "orderlab.reason"
SOURCE_TOPIC = "orderlab.source.topic"
SOURCE_PARTITION = "orderlab.source.partition"
SOURCE_OFFSET = "orderlab.source.offset"
ROLE = "orderlab.role"
# the key's and the value's size in the source record, in bytes (-1: none); absent when not known
SOURCE_KEY_BYTES = "orderlab.source.key.bytes"
SOURCE_VALUE_BYTES = "orderlab.source.value.bytes"

# A sixteenth of the producer's max_request_size (1 MiB): a dead letter
# always fits, and its first 64 kB show what the record was.
MAX_DEAD_LETTER_VALUE_BYTES = 64 * 1024
MAX_DEAD_LETTER_KEY_BYTES = 1024
MAX_REASON_CHARS = 1000  # a reason may quote the record (a long field): enough to read it


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, as a person would want to read it.

    ``key_size`` and ``value_size`` are the source record's (None when not
    recorded, e.g. a record the client could not read); ``key`` and
    ``value`` may be cut short of them (:attr:`cut`).
    """

    source_topic: str
    source_partition: int | None
    source_offset: int | None
    role: str
    reason: str
    key: bytes | None
    value: bytes | None
    dead_lettered_at: float
    key_size: int | None = None
    value_size: int | None = None

    @property
    def cut(self) -> bool:
        """Whether the key or value here is shorter than in the source record."""
        return any(
            size is not None and size > len(kept or b"")
            for size, kept in ((self.key_size, self.key), (self.value_size, self.value))
        )


def _size(data: bytes | None) -> bytes:
    return str(-1 if data is None else len(data)).encode()


def dead_letter_headers(reason: str, role: str, topic: str, partition: int | None, offset: int | None,
                        *, key: bytes | None = None, value: bytes | None = None,
                        sizes: bool = True) -> list[tuple[str, bytes]]:
    """The headers of a dead letter; with ``sizes``, the source key's and value's sizes too."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + f"... ({len(reason):,} characters)"
    headers = [
        (REASON, reason.encode(errors="replace")),
        (ROLE, role.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(-1 if partition is None else partition).encode()),
        (SOURCE_OFFSET, str(-1 if offset is None else offset).encode()),
    ]
    if sizes:
        headers += [(SOURCE_KEY_BYTES, _size(key)), (SOURCE_VALUE_BYTES, _size(value))]
    return headers


def send_to_dlq(
    producer: KafkaProducer,
    settings: Settings,
    *,
    topic: str,
    reason: str,
    role: str,
    key: bytes | None,
    value: bytes | None,
    partition: int | None = None,
    offset: int | None = None,
    unreadable: bool = False,
) -> Any:
    """Send the record (its key and value cut to the bounds above) to ``<topic>.dlq``; returns the send future.

    ``unreadable``: the client could not read the record, so there is no key,
    value or size to copy, only the reason and the position (the dead
    letter's value is then empty, as for a record with neither key nor value).
    """
    headers = dead_letter_headers(reason, role, topic, partition, offset, key=key, value=value, sizes=not unreadable)
    kept_key = None if key is None else key[:MAX_DEAD_LETTER_KEY_BYTES]
    kept_value = None if value is None else value[:MAX_DEAD_LETTER_VALUE_BYTES]
    if kept_key is None and kept_value is None:
        kept_value = b""  # Kafka clients refuse a record with neither (a tombstone, an unreadable record)
    return producer.send(settings.dlq_topic(topic), key=kept_key, value=kept_value, headers=headers)


def parse_dead_letter(record: Any) -> DeadLetter:
    """A record of a dead-letter topic as a :class:`DeadLetter`.

    Tolerant: a header missing, without a value, not UTF-8 or not a number
    reads as unknown, never as an error (anyone may write to a topic).
    """
    headers: dict[str, str] = {}
    for header in record.headers or ():
        try:
            name, raw = header
        except (TypeError, ValueError):
            continue
        if isinstance(name, str) and isinstance(raw, (bytes, bytearray)):
            headers[name] = bytes(raw).decode(errors="replace")

    def as_int(name: str, least: int = 0) -> int | None:
        try:
            number = int(headers.get(name, ""))
        except ValueError:
            return None
        return None if number < least else number

    topic = record.topic if isinstance(record.topic, str) else "?"
    return DeadLetter(
        source_topic=headers.get(SOURCE_TOPIC, topic.removesuffix(".dlq")),
        source_partition=as_int(SOURCE_PARTITION),
        source_offset=as_int(SOURCE_OFFSET),
        role=headers.get(ROLE, "?"),
        reason=headers.get(REASON, "(no reason recorded)"),
        key=record.key,
        value=record.value,
        dead_lettered_at=record.timestamp / 1000.0 if record.timestamp else time.time(),
        key_size=as_int(SOURCE_KEY_BYTES),
        value_size=as_int(SOURCE_VALUE_BYTES),
    )
