"""Dead-letter routing: a record that cannot be read goes to ``<topic>.dlq``
with the reason and where it came from in its headers. Nothing is dropped
silently, and the role that found it keeps going."""

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


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, as a person would want to read it."""

    source_topic: str
    source_partition: int | None
    source_offset: int | None
    role: str
    reason: str
    key: bytes | None
    value: bytes | None
    dead_lettered_at: float


def dead_letter_headers(reason: str, role: str, topic: str, partition: int | None, offset: int | None) -> list[tuple[str, bytes]]:
    return [
        (REASON, reason.encode()),
        (ROLE, role.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(-1 if partition is None else partition).encode()),
        (SOURCE_OFFSET, str(-1 if offset is None else offset).encode()),
    ]


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
) -> Any:
    """Send the raw record to ``<topic>.dlq``; returns the send future."""
    return producer.send(
        settings.dlq_topic(topic),
        key=key,
        value=value,
        headers=dead_letter_headers(reason, role, topic, partition, offset),
    )


def parse_dead_letter(record: Any) -> DeadLetter:
    headers = {name: value.decode(errors="replace") for name, value in (record.headers or [])}

    def as_int(name: str) -> int | None:
        number = int(headers.get(name, "-1"))
        return None if number < 0 else number

    return DeadLetter(
        source_topic=headers.get(SOURCE_TOPIC, record.topic.removesuffix(".dlq")),
        source_partition=as_int(SOURCE_PARTITION),
        source_offset=as_int(SOURCE_OFFSET),
        role=headers.get(ROLE, "?"),
        reason=headers.get(REASON, "(no reason recorded)"),
        key=record.key,
        value=record.value,
        dead_lettered_at=record.timestamp / 1000.0 if record.timestamp else time.time(),
    )
