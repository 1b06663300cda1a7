"""What a consumer role does with the records it polled, before the work:
decode each with the record type declared for its topic, and send what
cannot be used to ``<topic>.dlq`` with the reason.

A record is dead-lettered when its key is not an id (not UTF-8 text, or too
long: see :func:`orderlab.events.check_key`), when its value does not decode
(not JSON, invalid, or too large to be an order: see
:data:`orderlab.events.MAX_ORDER_BYTES`), or when the client could not read
it at all (an :class:`~orderlab.services.unreadable.UnreadableRecord`).
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from ..dlq import send_to_dlq
from ..events import EventError, check_key
from ..settings import Settings
from ..topology import Ports
from .base import Counters
from .records import Received
from .unreadable import UnreadableRecord


class Intake:
    """Decodes one role's polled records; counts ``dead_lettered`` (and ``unreadable``) in ``counters``."""

    def __init__(self, settings: Settings, ports: Ports, role: str, counters: Counters) -> None:
        self.settings = settings
        self.ports = ports
        self.role = role
        self.counters = counters
        self._reading_as: str | None = None  # the group registered with the decoders (see start_reading)

    def start_reading(self, group: str) -> None:
        """Register this worker, of ``group``, with its inputs' decoders: a record another group of the
        process decodes first is then kept for it (see :class:`orderlab.events.SharedDecodes`)."""
        if self._reading_as is None:
            self._reading_as = group
            for record in self.ports.inputs.values():
                record.add_reader(group)

    def stop_reading(self) -> None:
        """Undo :meth:`start_reading` (idempotent): nothing is kept for this worker any more."""
        group, self._reading_as = self._reading_as, None
        if group is not None:
            for record in self.ports.inputs.values():
                record.remove_reader(group)

    def decode(self, raw_records: list[Any], producer: KafkaProducer) -> tuple[list[Received[Any]], list[Any]]:
        """Split a poll into decoded events and the futures of the dead letters sent for the rest."""
        decoded: list[Received[Any]] = []
        dead: list[Any] = []
        for record in raw_records:
            if isinstance(record, UnreadableRecord):
                self.counters.add("unreadable")
                dead.append(self.dead_letter(producer, record, record.reason))
                continue
            try:
                check_key(record.key)
                event = self.ports.decoder(record.topic)(record.value)
            except EventError as exc:
                dead.append(self.dead_letter(producer, record, str(exc)))
                continue
            decoded.append(Received(record.topic, record.partition, record.offset, record.key, event, record.value))
        return decoded, dead

    def dead_letter(self, producer: KafkaProducer, record: Any, reason: str) -> Any:
        """Send ``record`` to its topic's dead-letter topic with ``reason``; the send future."""
        self.counters.add("dead_lettered")
        return send_to_dlq(
            producer, self.settings, topic=record.topic, reason=reason, role=self.role,
            key=record.key, value=record.value, partition=record.partition, offset=record.offset,
            unreadable=isinstance(record, UnreadableRecord),
        )
