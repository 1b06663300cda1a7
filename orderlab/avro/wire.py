"""Avro orders on a Kafka topic: the schema's id in a record header, the reader's schema on the way out.

A record's value is Avro binary with no schema in it (:mod:`.codec`); the
header ``orderlab.schema.id`` says which registered schema wrote it, as the
first five bytes of the value do in Confluent's wire format (a zero byte,
then the id in four). A reader looks the id up in the registry, reads the
bytes through its own schema, and sends a record it cannot read to the
topic's dead-letter twin with the reason: no header, an id nobody
registered, bytes that do not decode, or an order that breaks the rules.

Lesson 11's topics are its own (``orders_avro<suffix>`` and its ``.dlq``),
one partition each, so records come back in the order they were written;
the JSON pipeline's topics are not touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ..clients import make_admin, make_consumer, make_producer
from ..dlq import send_to_dlq
from ..events import EventError, Order
from ..settings import Settings
from ..topics import create_missing_topics
from .codec import AvroError, Schema, decode, encode, parse, plain
from .orders import order_from_record, order_record
from .registry import RegisteredSchema, SchemaRegistry, UnknownSchemaId

SCHEMA_ID_HEADER = "orderlab.schema.id"
AVRO_TOPIC = "orders_avro"


class UndecodableRecord(ValueError):
    """A record a reader cannot turn into an order; the message is the dead-letter reason."""


def avro_topic(settings: Settings) -> str:
    """This run's topic of Avro orders."""
    return AVRO_TOPIC + settings.topic_suffix


def subject_for(topic: str) -> str:
    """The registry subject of a topic's values (``<topic>-value``, Confluent's default naming)."""
    return f"{topic}-value"


def create_avro_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create this run's Avro topic and its dead-letter topic (one partition each; idempotent); returns their names."""
    topic = avro_topic(settings)
    names = [topic, settings.dlq_topic(topic)]
    admin = make_admin(settings)
    try:
        create_missing_topics(admin, {name: 1 for name in names}, timeout_s=timeout_s)
    finally:
        admin.close()
    return names


def schema_id_header(schema_id: int) -> tuple[str, bytes]:
    """The header that names the writer's schema."""
    return (SCHEMA_ID_HEADER, str(schema_id).encode())


def send_order(producer: KafkaProducer, topic: str, order: Order, schema: RegisteredSchema, **extra: Any) -> Any:
    """Send ``order`` as Avro with a registered schema, its id in the header; returns the send future.

    ``extra`` fills the fields the schema has beyond the order's (``channel="app"``).

    Only a :class:`RegisteredSchema` is accepted, so what the registry refused can never be written.
    """
    if not isinstance(schema, RegisteredSchema):
        raise TypeError("send_order needs a schema from SchemaRegistry.register, which checks it first")
    value = encode(order_record(order, **extra), schema.parsed)
    return producer.send(topic, key=order.order_id.encode(), value=value, headers=[schema_id_header(schema.id)])


def schema_id_of(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """The writer's schema id from a record's headers; raises :class:`UndecodableRecord` if missing or not a number."""
    found = [value for name, value in headers or () if name == SCHEMA_ID_HEADER]
    if not found:
        raise UndecodableRecord(f"no {SCHEMA_ID_HEADER} header: nothing says which schema wrote the record")
    text = (found[-1] or b"").decode(errors="replace")
    if not text.isdigit():
        raise UndecodableRecord(f"the {SCHEMA_ID_HEADER} header is {text!r}, not a schema id")
    return int(text)


@dataclass(frozen=True)
class DecodedOrder:
    """One record read through a reader's schema."""

    partition: int
    offset: int
    writer: RegisteredSchema
    fields: dict[str, Any]  # the datum as the reader's schema has it: its new fields filled with their defaults
    order: Order


def decode_record(record: Any, registry: SchemaRegistry, reader: Schema) -> DecodedOrder:
    """Read one Kafka record through ``reader``, the writer's schema found by the header's id.

    Raises :class:`UndecodableRecord`, whose message is the dead-letter reason.
    """
    schema_id = schema_id_of(record.headers)
    try:
        writer = registry.get(schema_id)
    except UnknownSchemaId as exc:
        raise UndecodableRecord(f"{exc}: the producer wrote with a schema nobody registered") from None
    if record.value is None:
        raise UndecodableRecord("the record has no value")
    try:
        datum = decode(record.value, writer.parsed, reader)
    except AvroError as exc:
        raise UndecodableRecord(f"cannot read it as written by {writer.label}: {exc}") from None
    try:
        order = order_from_record(datum)
    except EventError as exc:
        raise UndecodableRecord(str(exc)) from None
    return DecodedOrder(record.partition, record.offset, writer, dict(datum), order)


@dataclass(frozen=True)
class ReadResult:
    """What one :meth:`AvroOrderReader.read` found: the orders, and the dead letters it sent (offset, reason)."""

    orders: tuple[DecodedOrder, ...]
    dead_lettered: tuple[tuple[int, str], ...] = field(default=())


class AvroOrderReader:
    """Reads a topic of Avro orders from its beginning through one reader schema, dead-lettering what it cannot read.

    It holds every partition of the topic without a consumer group (a
    lesson's reader needs no rebalance) and keeps its place between calls
    of :meth:`read`, as a group's committed offsets would. Each dead letter
    is acknowledged by the broker before :meth:`read` returns.
    """

    def __init__(self, settings: Settings, topic: str, registry: SchemaRegistry, reader: Schema, *, role: str) -> None:
        self.settings = settings
        self.topic = topic
        self.registry = registry
        self.reader = plain(reader)
        self._reader_parsed = parse(self.reader)
        self.role = role
        self._producer: KafkaProducer | None = None
        consumer = make_consumer(settings, None)
        deadline = time.monotonic() + settings.connect_timeout_s
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                consumer.close(autocommit=False)
                raise RuntimeError(f"topic {topic} does not exist: create it first (create_avro_topics)")
            time.sleep(0.1)
        self._partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(self._partitions)
        consumer.seek_to_beginning(*self._partitions)
        self._consumer: KafkaConsumer | None = consumer

    def read(self, timeout_s: float = 30.0) -> ReadResult:
        """Every record from where the last call stopped up to the topic's end as of now."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"the AvroOrderReader {self.role!r} is closed: make a new one")
        end = consumer.end_offsets(self._partitions)
        orders: list[DecodedOrder] = []
        dead: list[tuple[int, str]] = []
        futures = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic} to its end within {timeout_s:.0f} s")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for record in batch:
                    if record.offset >= end[tp]:
                        continue
                    try:
                        orders.append(decode_record(record, self.registry, self._reader_parsed))
                    except UndecodableRecord as exc:
                        dead.append((record.offset, str(exc)))
                        futures.append(send_to_dlq(
                            self.producer, self.settings, topic=record.topic, reason=str(exc), role=self.role,
                            key=record.key, value=record.value, partition=record.partition, offset=record.offset,
                        ))
        for future in futures:
            future.get(timeout=30)
        return ReadResult(tuple(orders), tuple(dead))

    @property
    def producer(self) -> KafkaProducer:
        """The dead letters' producer, made at the first dead letter."""
        if self._producer is None:
            self._producer = make_producer(self.settings)
        return self._producer

    def close(self) -> None:
        """Close the consumer, and the producer if one was made. Idempotent."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close(autocommit=False)
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=10)

    def __enter__(self) -> "AvroOrderReader":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def readings_table(results: Mapping[str, ReadResult], new_field: str = "channel") -> pd.DataFrame:
    """The orders each reader read: offset, order, the writer's version, and ``new_field`` as the reader sees it.

    ``results``: by the reader's name (``"v1 reader"``). A reader whose
    schema has no ``new_field`` shows "(not in its schema)".
    """
    rows = [
        {
            "reader": reader,
            "offset": decoded.offset,
            "order": decoded.order.order_id[:8],
            "written with": f"v{decoded.writer.version}",
            new_field: decoded.fields.get(new_field, "(not in its schema)"),
            "total": decoded.order.total_cents / 100.0,
        }
        for reader, result in results.items()
        for decoded in result.orders
    ]
    return pd.DataFrame(rows, columns=["reader", "offset", "order", "written with", new_field, "total"])
