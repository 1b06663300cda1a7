"""Fault injection for the lessons and chaos runs: a consumer worker that dies
mid-batch like a killed process, without committing and without leaving its
group cleanly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer


class SimulatedCrash(BaseException):
    """Raised inside a worker to end it like a killed process: no commit, no clean leave.

    A BaseException, so no ``except Exception`` on the way out catches it.
    """


@dataclass(frozen=True)
class CrashRequest:
    """A crash asked for: at the first batch of at least ``min_records``, after
    its output was sent and acknowledged (``after_send``) or before."""

    after_send: bool = True
    min_records: int = 1

    def __post_init__(self) -> None:
        if self.min_records < 1:
            raise ValueError(f"min_records must be at least 1, got {self.min_records}")

    def due(self, raw_records: list[Any]) -> bool:
        """Whether raw_records is the batch the crash happens in."""
        return len(raw_records) >= self.min_records


def abandon(consumer: KafkaConsumer) -> None:
    """Drop a consumer's connections as a killed process would: no commit, no LeaveGroup.

    kafka-python has no "abandon" call: stop heartbeating and drop the
    sockets, so the group notices only when the session times out.
    """
    consumer._coordinator._close_heartbeat()  # noqa: SLF001
    consumer._closed = True  # noqa: SLF001
    consumer._client.close()  # noqa: SLF001
