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
from ..limits import MAX_RATE
from ..mail import Confirmation, MailSender, SmtpRelay, wait_seconds
from ..settings import Settings
from ..topology import RoleSpec
from .consumer import ConsumerService
from .records import Received

log = logging.getLogger(__name__)

# The SMTP relay's connections, each with one message in flight (pipelined). A round of replies is one wait
# for the catcher's process; with 8 a round, a classroom run at 1970 orders/s e-mailed 1,496 of 1,771/s.
SMTP_CONNECTIONS = 16

RESEND_WINDOW = SMTP_CONNECTIONS
"""At most this many e-mails are sent twice when the e-mail role's process is killed (SIGKILL, its SMTP
helper with it) and started again: one per SMTP connection.

Every e-mail is recorded in the ledger by order id, and a redelivered
confirmation whose e-mail is there is skipped. Only an e-mail the SMTP server
accepted but the ledger does not have yet can go out twice. The relay's
helper process keeps :data:`SMTP_CONNECTIONS` messages in flight, one per
connection, reads the round's 250 replies, records those messages in the
ledger in one SQLite transaction and only then sends the next round's
content (:class:`~orderlab.mail.smtp.SmtpSender`'s ``journal``). So a kill
finds at most one round accepted and unrecorded: the messages whose 250 had
arrived, or was on its way, when the process died. A few mails sent directly
(``SmtpRelay.inline_up_to``) go one at a time over one connection: at most
one. SMTP allows no less without giving up pipelining: the 250 reply is the
only sign that a message was accepted, and a process can die between the
server sending it and anyone writing it down. (Before, the role recorded a
whole hand-over of :attr:`EmailNotifier.hand_over` e-mails when it came
back, so a kill could send up to 256 again.)
"""


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where the e-mail role hands its mails: the configured server, or the embedded catcher."""

    host: str
    port: int


# E-mail latencies kept for the charts: the control room's 60 s window at the
# rate slider's top. 20,000 covered 11 s at 1,800 e-mails/s, so the latency
# panel drew only its last 11 s; a frame over 120,000 costs about 11 ms.
LATENCY_WINDOW_S = 60
LATENCY_HISTORY = LATENCY_WINDOW_S * MAX_RATE


class EmailNotifier(ConsumerService[ConfirmedOrder]):
    """E-mails the customer of each confirmed order it reads, once per order.

    Extra arguments: ``ledger`` (what was sent, by order id) and ``smtp``,
    the server to send through.
    """

    # e-mails per hand-over to the SMTP relay (see _send_until_delivered).
    # Each hand-over is a round trip to the relay process, and getting the
    # GIL back after it: with 64 the role fell behind at 2000 orders/s with
    # the control room drawing; with 256 it keeps up. (It no longer bounds
    # what a kill re-sends: the relay records every round, see RESEND_WINDOW.)
    hand_over = 256
    counter_names = ("sent", "skipped_already_sent", "smtp_retries")

    def __init__(self, settings: Settings, spec: RoleSpec, *, ledger: Ledger, smtp: SmtpEndpoint, **options: Any) -> None:
        super().__init__(settings, spec, **options)
        self.ledger = ledger
        # the relay records each accepted e-mail in the ledger itself (see RESEND_WINDOW)
        self.sender: MailSender = SmtpRelay(smtp.host, smtp.port, connections=SMTP_CONNECTIONS, ledger=ledger)
        # (order created_at, sent_at) of recent e-mails, for latency charts
        self._latencies: deque[tuple[float, float]] = deque(maxlen=LATENCY_HISTORY)
        self._latency_lock = threading.Lock()

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        """Send the e-mails of the orders not yet e-mailed (the ledger says), once per order.

        The sender composes them (the SMTP relay in its child process, see
        :class:`~orderlab.mail.Confirmation`), from the records as they were read.
        """
        already = self.ledger.emailed_among(received.event.order.order_id for received in batch)
        outgoing: list[tuple[Order, Confirmation]] = []
        for received in batch:
            order = received.event.order
            if order.order_id in already:
                self.counters.add("skipped_already_sent")
                continue
            already.add(order.order_id)  # the same order twice in one batch is mailed once
            outgoing.append((order, Confirmation.of(received.event, self.settings.smtp_sender, received.value)))
        if outgoing:
            self._send_until_delivered(outgoing)
        return []

    def _send_until_delivered(self, outgoing: list[tuple[Order, Confirmation]]) -> None:
        """Send every mail, retrying with back-off while SMTP is away.

        The mails go to the SMTP relay :attr:`hand_over` at a time, and
        the relay records each one in the ledger within the round of SMTP
        replies that accepted it (see :data:`RESEND_WINDOW`): so before this
        returns, and before the batch's offsets are committed, a redelivered
        confirmation finds its e-mail there. After an error the mails the
        ledger has by then are not sent again: a relay whose helper process
        died in the middle of a group recorded what the server had accepted,
        though it could not say how many that was.
        """
        waiting = outgoing
        attempt = 0
        while waiting:
            group = waiting[:self.hand_over]
            sent = 0

            def delivered(mail: Confirmation) -> None:
                """The SMTP server accepted mail (and the relay recorded it): count it."""
                nonlocal sent
                order, expected = group[sent]
                if mail is not expected:
                    raise RuntimeError(f"{self.name}: SMTP replies came back out of order")
                sent += 1
                self.counters.add("sent")
                with self._latency_lock:
                    self._latencies.append((order.created_at, time.time()))

            try:
                self.sender.send_confirmations([mail for _, mail in group], delivered)
            except (OSError, smtplib.SMTPException) as exc:
                recorded = self.ledger.emailed_among(order.order_id for order, _ in waiting[sent:])
                waiting = [(order, mail) for order, mail in waiting[sent:] if order.order_id not in recorded]
                attempt += 1
                self.counters.add("smtp_retries")
                if attempt == 1:
                    log.warning("email: SMTP %s:%s not answering (%s); retrying", self.sender.host, self.sender.port, exc)
                if self.wait(wait_seconds(attempt)):
                    raise _Interrupted from None  # stopping: leave the batch uncommitted, it is read again next time
            else:
                attempt = 0
                waiting = waiting[sent:]

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
