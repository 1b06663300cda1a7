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

from ..events import ConfirmedOrder, Order, decode_confirmed
from ..ledger import Ledger
from ..mail import MailSender, OutgoingMail, SmtpRelay, compose_confirmation, wait_seconds
from ..settings import Settings
from .consumer import ConsumerService, Received

log = logging.getLogger(__name__)


class EmailNotifier(ConsumerService[ConfirmedOrder]):
    role = "email"
    # e-mails per hand-over to the SMTP relay and per ledger transaction (see
    # _send_until_delivered). Each hand-over is a round trip to the relay
    # process, and getting the GIL back after it: with 64 the role fell
    # behind at 2000 orders/s with the control room drawing; with 256 it keeps up.
    record_every = 256
    counter_names = ("consumed", "sent", "skipped_already_sent", "smtp_retries", "dead_lettered", "commits", "commit_failures")

    def __init__(self, settings: Settings, ledger: Ledger, *, smtp_host: str, smtp_port: int, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.ledger = ledger
        self.sender: MailSender = SmtpRelay(smtp_host, smtp_port)
        # (order created_at, sent_at) of recent e-mails, for latency charts
        self._latencies: deque[tuple[float, float]] = deque(maxlen=20_000)
        self._latency_lock = threading.Lock()

    def topics(self) -> tuple[str, ...]:
        return (self.settings.order_confirmed_topic,)

    def decoder(self, topic: str) -> Callable[[bytes | None], ConfirmedOrder]:
        return decode_confirmed

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        already = self.ledger.emailed_among(received.event.order.order_id for received in batch)
        outgoing: list[tuple[Order, OutgoingMail]] = []
        for received in batch:
            order = received.event.order
            if order.order_id in already:
                self.counters.add("skipped_already_sent")
                continue
            already.add(order.order_id)  # the same order twice in one batch is mailed once
            outgoing.append((order, compose_confirmation(received.event, self.settings.smtp_sender)))
        if outgoing:
            self._send_until_delivered(outgoing)
        return []

    def _send_until_delivered(self, outgoing: list[tuple[Order, OutgoingMail]]) -> None:
        """Send every mail, retrying with back-off while SMTP is away.

        The mails go to the SMTP relay :attr:`record_every` at a time, and
        what the server accepted of each group goes into the ledger in one
        SQLite transaction (not one per e-mail) before the next group is
        sent, and always before this returns or waits to retry: so before the
        batch's offsets are committed, and a redelivered confirmation finds
        its e-mail there. Only a process killed in the middle can leave up to
        one group of sent e-mails unrecorded, to be sent again.
        """
        done = 0
        unrecorded: list[tuple[str, str]] = []

        def record() -> None:
            if unrecorded:
                self.ledger.record_emails(unrecorded)
                unrecorded.clear()

        def delivered(mail: OutgoingMail) -> None:
            nonlocal done
            order, expected = outgoing[done]
            assert mail is expected, "SMTP replies out of order"
            unrecorded.append((order.order_id, mail.message_id))
            done += 1
            self.counters.add("sent")
            with self._latency_lock:
                self._latencies.append((order.created_at, time.time()))
            if len(unrecorded) >= self.record_every:
                record()

        attempt = 0
        while done < len(outgoing):
            try:
                self.sender.send_all([mail for _, mail in outgoing[done:done + self.record_every]], delivered)
            except (OSError, smtplib.SMTPException) as exc:
                record()
                attempt += 1
                self.counters.add("smtp_retries")
                if attempt == 1:
                    log.warning("email: SMTP %s:%s not answering (%s); retrying", self.sender.host, self.sender.port, exc)
                if self.wait(wait_seconds(attempt)):
                    raise _Interrupted from None  # stopping: leave the batch uncommitted, it is read again next time
            else:
                attempt = 0
            finally:
                record()

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
