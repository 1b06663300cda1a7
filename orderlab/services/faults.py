"""Fault injection for the lessons and chaos runs: a consumer worker that dies
mid-batch like a killed process, without committing and without leaving its
group cleanly; or that holds there, work done and offsets not committed,
until its process is really killed (``orderlab run`` under
``ORDERLAB_FAULT_HOLD_BEFORE_COMMIT``, for ``orderlab chaos``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from kafka import KafkaConsumer

log = logging.getLogger(__name__)

HOLDING = "fault injection: holding"  # what the log line of a holding worker says (orderlab chaos waits for it)


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
    hold: bool = False  # wait there (until stopped, or killed from outside) before ending like a crash

    def __post_init__(self) -> None:
        if self.min_records < 1:
            raise ValueError(f"min_records must be at least 1, got {self.min_records}")

    def due(self, raw_records: list[Any]) -> bool:
        """Whether raw_records is the batch the crash happens in."""
        return len(raw_records) >= self.min_records


class CrashInjection:
    """What a consumer worker offers the lessons and chaos runs: :meth:`crash` at its next batch.

    A mixin of :class:`~orderlab.services.consumer.ConsumerService`, whose
    clients and counters are the ones declared here.
    """

    _crash: CrashRequest | None = None
    _consumer: Any
    _producer: Any
    _shared_producer: Any
    counters: Any
    name: str
    wait: Callable[[float], bool]

    def crash(self, after_send: bool = True, *, min_records: int = 1) -> None:
        """Fault injection: end the worker at its next batch like a killed process.

        With ``after_send`` the batch's output is sent (and acknowledged) but
        its offsets are never committed, which is the window where
        at-least-once delivery produces duplicates. ``min_records`` waits for
        a batch of at least that many records, so the crash loses real work.
        """
        self._crash = CrashRequest(after_send, min_records)

    def hold_before_commit(self, *, min_records: int = 1) -> None:
        """Fault injection: at the first batch of at least ``min_records``, once its work is
        done and its output acknowledged, wait before committing until the worker is
        stopped (then end like a crash) or the process is killed.

        For a real SIGKILL between the side effects and the commit: a thread
        cannot make that moment happen on time, a process that waits there can.
        """
        self._crash = CrashRequest(after_send=True, min_records=min_records, hold=True)

    def crash_now(self, raw_records: list[Any]) -> None:
        """Crash here (raise :class:`SimulatedCrash`); a hold first waits, saying so in the log."""
        if self._crash is not None and self._crash.hold:
            log.warning("%s: %s a batch of %d records, its work done and its output acknowledged, its offsets not "
                        "committed, until the process is killed", self.name, HOLDING, len(raw_records))
            while not self.wait(3600.0):
                pass
        raise SimulatedCrash

    def crash_due(self, raw_records: list[Any]) -> bool:
        """Whether the requested crash happens in this batch."""
        return self._crash is not None and self._crash.due(raw_records)

    @property
    def crash_after_send(self) -> bool:
        """Whether the requested crash comes after the batch's output was sent (True when none is requested)."""
        return self._crash is None or self._crash.after_send

    def die(self) -> None:
        """Drop the worker's clients without committing or leaving the group cleanly (a
        :class:`~orderlab.services.consumer.ConsumerService`'s: its consumer and own producer)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            abandon(consumer)
        producer = self._producer
        if producer is not None and producer is not self._shared_producer:
            self._producer = None
            producer.close(timeout=0)
        self.counters.add("crashes")


def abandon(consumer: KafkaConsumer) -> None:
    """Drop a consumer's connections as a killed process would: no commit, no LeaveGroup.

    kafka-python has no "abandon" call: stop heartbeating and drop the
    sockets, so the group notices only when the session times out.
    """
    consumer._coordinator._close_heartbeat()  # noqa: SLF001
    consumer._closed = True  # noqa: SLF001
    consumer._client.close()  # noqa: SLF001
