"""Email Notification Service: reads ``order_confirmed`` and e-mails the customer.

The ledger records every e-mail by order id before the offset is committed,
so a redelivered confirmation is not mailed twice. When the SMTP server is
away the batch is retried with back-off (and nothing is committed) until it
comes back or the service is stopped.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections import deque
from typing import Any, Callable

from ..events import ConfirmedOrder, decode_confirmed
from ..ledger import Ledger
from ..mail import SmtpSender, render_confirmation, wait_seconds
from ..settings import Settings
from .consumer import ConsumerService, Received

log = logging.getLogger(__name__)


class EmailNotifier(ConsumerService[ConfirmedOrder]):
    role = "email"
    counter_names = ("consumed", "sent", "skipped_already_sent", "smtp_retries", "dead_lettered", "commits", "commit_failures")

    def __init__(self, settings: Settings, ledger: Ledger, *, smtp_host: str, smtp_port: int, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.ledger = ledger
        self.sender = SmtpSender(smtp_host, smtp_port)
        # (order created_at, sent_at) of recent e-mails, for latency charts
        self._latencies: deque[tuple[float, float]] = deque(maxlen=20_000)
        self._latency_lock = threading.Lock()

    def topics(self) -> tuple[str, ...]:
        return (self.settings.order_confirmed_topic,)

    def decoder(self, topic: str) -> Callable[[bytes | None], ConfirmedOrder]:
        return decode_confirmed

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        for received in batch:
            order = received.event.order
            if self.ledger.emailed(order.order_id):
                self.counters.add("skipped_already_sent")
                continue
            message = render_confirmation(received.event, self.settings.smtp_sender)
            self._send_until_delivered(message)
            if self.stopping and not self._delivered:
                raise _Interrupted
            self.ledger.record_email(order.order_id, str(message["Message-ID"]))
            self.counters.add("sent")
            with self._latency_lock:
                self._latencies.append((order.created_at, time.time()))
        return []

    def _send_until_delivered(self, message: Any) -> None:
        attempt = 0
        self._delivered = False
        while True:
            try:
                self.sender.send(message)
                self._delivered = True
                return
            except (OSError, smtplib.SMTPException) as exc:
                attempt += 1
                self.counters.add("smtp_retries")
                if attempt == 1:
                    log.warning("email: SMTP %s:%s not answering (%s); retrying", self.sender.host, self.sender.port, exc)
                if self.wait(wait_seconds(attempt)):
                    return  # stopping: leave the batch uncommitted, it is read again next time

    def handle(self, raw_records: list[Any]) -> None:
        try:
            super().handle(raw_records)
        except _Interrupted:
            pass  # stopped while SMTP was down: nothing committed for this batch

    def latencies(self) -> list[tuple[float, float]]:
        """(order created_at, e-mail sent_at) pairs of recent e-mails."""
        with self._latency_lock:
            return list(self._latencies)

    def close(self) -> None:
        self.sender.close()
        super().close()


class _Interrupted(Exception):
    """The service was stopped while waiting for SMTP."""
