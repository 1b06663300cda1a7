"""Writing records a well-behaved producer would not: for the tests of bad records.

kafka-python's producer refuses a header without a value and encodes header
keys as UTF-8 with ``str.encode``. :class:`RawHeaderKey` is a ``str`` whose
encoding is any bytes; :func:`write_batch` puts a record batch built by
kafka-python's own builder (which writes a null header value as Kafka
defines it) on a partition as it is, by swapping it into the produce request
of a placeholder record. The broker stores such batches byte for byte
(checked against Kafka 4.4); what kafka-python then does reading them is
what the tests are about.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kafka.record.default_records import DefaultRecordBatchBuilder

from orderlab.broker.config import KAFKA_DATA
from orderlab.clients import make_producer
from orderlab.settings import Settings

Header = tuple[str, "bytes | None"]


class RawHeaderKey(str):
    """A header key whose bytes on the wire are ``raw`` (not UTF-8, if you like)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> "RawHeaderKey":
        key = super().__new__(cls, raw.decode("utf-8", errors="replace"))
        key.raw = raw
        return key

    def encode(self, *_args: Any, **_kwargs: Any) -> bytes:  # type: ignore[override]
        return self.raw


def build_batch(records: list[tuple[bytes | None, bytes | None, list[Header]]], compression: int = 0) -> bytes:
    """A record batch (message format v2) of ``(key, value, headers)``; ``compression`` 1 is gzip."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=64 << 20)
    now_ms = int(time.time() * 1000)
    for offset, (key, value, headers) in enumerate(records):
        builder.append(offset, now_ms, key, value, headers)
    return bytes(builder.build())


def write_batch(settings: Settings, topic: str, partition: int,
                records: list[tuple[bytes | None, bytes | None, list[Header]]], compression: int = 0) -> int:
    """Append ``records`` as one batch to ``topic``'s ``partition``; returns the offset of the first."""
    data = build_batch(records, compression)
    producer = make_producer(settings, enable_idempotence=False, linger_ms=0)
    original = producer._sender._produce_request  # noqa: SLF001 - the one place a request is built

    def with_our_batch(node_id: int, acks: int, timeout: int, batches: list[Any]) -> Any:
        request = original(node_id, acks, timeout, batches)
        for topic_data in request.topic_data:
            for partition_data in topic_data.partition_data:
                partition_data.records = data
        return request

    producer._sender._produce_request = with_our_batch  # noqa: SLF001
    try:
        return producer.send(topic, value=b"placeholder", partition=partition).get(timeout=30).offset
    finally:
        producer.close(timeout=5)


def corrupt_record(data_dir: Path, topic: str, partition: int, marker: bytes) -> None:
    """Flip one byte of ``marker`` where it is in the partition's log on disk: its batch fails its CRC.

    The broker checks CRCs when records are produced, never when they are
    read, so this is how a corrupt record (a bad disk) reaches a consumer.
    """
    for segment in sorted((data_dir / KAFKA_DATA / f"{topic}-{partition}").glob("*.log")):
        content = segment.read_bytes()
        at = content.find(marker)
        if at >= 0:
            with open(segment, "r+b") as log_file:
                log_file.seek(at)
                log_file.write(bytes([content[at] ^ 0x20]))
            return
    raise AssertionError(f"{marker!r} is in no segment of {topic}-{partition} under {data_dir}")
