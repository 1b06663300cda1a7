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
from dataclasses import dataclass
from typing import Any

from ..events import ConfirmedOrder, Order
from ..ledger import Ledger
from ..mail import MailSender, OutgoingMail, SmtpRelay, compose_confirmation, wait_seconds
from ..settings import Settings
from ..topology import RoleSpec
from .consumer import ConsumerService
from .records import Received

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where the e-mail role hands its mails: the configured server, or the embedded catcher."""

    host: str
    port: int


class EmailNotifier(ConsumerService[ConfirmedOrder]):
    """E-mails the customer of each confirmed order it reads, once per order.

    Extra arguments: ``ledger`` (what was sent, by order id) and ``smtp``,
    the server to send through.
    """

    # e-mails per hand-over to the SMTP relay and per ledger transaction (see
    # _send_until_delivered). Each hand-over is a round trip to the relay
    # process, and getting the GIL back after it: with 64 the role fell
    # behind at 2000 orders/s with the control room drawing; with 256 it keeps up.
    record_every = 256
    counter_names = ("sent", "skipped_already_sent", "smtp_retries")

    def __init__(self, settings: Settings, spec: RoleSpec, *, ledger: Ledger, smtp: SmtpEndpoint, **options: Any) -> None:
        super().__init__(settings, spec, **options)
        self.ledger = ledger
        self.sender: MailSender = SmtpRelay(smtp.host, smtp.port)
        # (order created_at, sent_at) of recent e-mails, for latency charts
        self._latencies: deque[tuple[float, float]] = deque(maxlen=20_000)
        self._latency_lock = threading.Lock()

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        """Compose and send the e-mails of the orders not yet e-mailed (the ledger says), once per order."""
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
            """Write the e-mails accepted so far into the ledger, in one transaction."""
            if unrecorded:
                self.ledger.record_emails(unrecorded)
                unrecorded.clear()

        def delivered(mail: OutgoingMail) -> None:
            """The SMTP server accepted mail: count it and keep it to be recorded."""
            nonlocal done
            order, expected = outgoing[done]
            if mail is not expected:
                raise RuntimeError(f"{self.name}: SMTP replies came back out of order")
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
        """As the base's, but a stop while SMTP is down leaves the batch uncommitted instead of failing."""
        try:
            super().handle(raw_records)
        except _Interrupted:
            pass  # stopped while SMTP was down: nothing committed for this batch

    def latencies(self) -> list[tuple[float, float]]:
        """(order created_at, e-mail sent_at) pairs of recent e-mails."""
        with self._latency_lock:
            return list(self._latencies)

    def close(self) -> None:
        """Stop the SMTP relay, then close the consumer as the base does."""
        self.sender.close()
        super().close()


class _Interrupted(Exception):
    """The service was stopped while waiting for SMTP."""
