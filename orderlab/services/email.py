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

from kafka.errors import KafkaError

from ..clients import BrokerUnavailable
from ..events import ConfirmedOrder, Order
from ..ledger import Ledger
from ..limits import MAX_RATE
from ..mail import Confirmation, Handover, MailSender, SmtpRelay, wait_seconds
from ..settings import Settings
from ..topology import RoleSpec
from .consumer import ConsumerService
from .records import Received, first_offsets

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
whole hand-over of 256 e-mails when it came
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


@dataclass(frozen=True)
class _InFlight:
    """A batch whose e-mails the sender has (perhaps still sending them) and whose offsets are not committed."""

    raw_records: list[Any]
    dead_letters: list[Any]  # the acks of its dead letters, awaited before the commit
    outgoing: list[tuple[Order, Confirmation]]
    handover: Handover | None  # None: nothing to send (all skipped, or all dead letters)

    @property
    def order_ids(self) -> set[str]:
        return {order.order_id for order, _ in self.outgoing}


class EmailNotifier(ConsumerService[ConfirmedOrder]):
    """E-mails the customer of each confirmed order it reads, once per order.

    Extra arguments: ``ledger`` (what was sent, by order id) and ``smtp``,
    the server to send through.

    Why one batch stays in flight: the SMTP relay's child sends a batch's
    mails while this thread reads and decodes the next one. Done one after
    the other (as before), the child waited for the thread (a poll, a
    decode, a ledger lookup, each waiting for the pipeline's GIL) and the
    thread for the child: py-spy in the 1500/s classroom step found the
    child busy a fifth of the time while e-mail fell behind. A batch's
    offsets are still committed only after its mails were accepted and
    recorded (:meth:`_settle`), before the next batch goes to the relay, so
    at-least-once and the ledger's once-per-order hold as before; what
    changes is that the commit waits one batch longer.
    """

    counter_names = ("sent", "skipped_already_sent", "smtp_retries")

    def __init__(self, settings: Settings, spec: RoleSpec, *, ledger: Ledger, smtp: SmtpEndpoint, **options: Any) -> None:
        super().__init__(settings, spec, **options)
        self.ledger = ledger
        # the relay records each accepted e-mail in the ledger itself (see RESEND_WINDOW)
        self.sender: MailSender = SmtpRelay(smtp.host, smtp.port, connections=SMTP_CONNECTIONS, ledger=ledger)
        # (order created_at, sent_at) of recent e-mails, for latency charts
        self._latencies: deque[tuple[float, float]] = deque(maxlen=LATENCY_HISTORY)
        self._latency_lock = threading.Lock()
        self._in_flight: _InFlight | None = None
        self._rewind_too: list[Any] = []  # an in-flight batch that failed: read again with the batch after it

    def outgoing(self, batch: list[Received[ConfirmedOrder]]) -> list[tuple[Order, Confirmation]]:
        """The e-mails of the orders not yet e-mailed (the ledger says) nor on their way, once per order.

        The sender composes them (the SMTP relay in its child process, see
        :class:`~orderlab.mail.Confirmation`), from the records as they were read.
        """
        if not batch:
            return []
        already = self.ledger.emailed_among(received.event.order.order_id for received in batch)
        if self._in_flight is not None:
            already |= self._in_flight.order_ids  # handed over, not yet in the ledger: a redelivery
        outgoing: list[tuple[Order, Confirmation]] = []
        for received in batch:
            order = received.event.order
            if order.order_id in already:
                self.counters.add("skipped_already_sent")
                continue
            already.add(order.order_id)  # the same order twice in one batch is mailed once
            outgoing.append((order, Confirmation.of(received.event, self.settings.smtp_sender, received.value)))
        return outgoing

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        """E-mail ``batch`` and wait until every mail was accepted and recorded: the base's contract, synchronous.

        This role's own loop does not come here: :meth:`handle` keeps one
        batch in flight instead. No futures: the role sends nothing to Kafka
        but dead letters, which the decoding made.
        """
        outgoing = self.outgoing(batch)
        handover = self._hand_over(outgoing)
        if handover is not None:
            self._deliver(outgoing, handover)
        return []

    def handle(self, raw_records: list[Any]) -> None:
        """Decode, settle the batch before, hand this one's mails to the sender, keep this one in flight.

        An empty ``raw_records`` (a quiet poll, see :meth:`holds_a_batch`)
        only settles. A stop while SMTP is down leaves both batches
        uncommitted (they are read again next time) instead of failing.
        """
        try:
            decoded, dead_letters = self.decode(raw_records)
            outgoing = self.outgoing(decoded)  # before settling: the batch in flight counts as on its way
            self._settle()
            handover = self._hand_over(outgoing)
            if raw_records:
                self._in_flight = _InFlight(raw_records, dead_letters, outgoing, handover)
        except _Interrupted:
            pass  # stopped while SMTP was down: nothing committed for these batches

    def _hand_over(self, outgoing: list[tuple[Order, Confirmation]]) -> Handover | None:
        """Give ``outgoing``'s mails to the sender, which sends them while this thread goes on; None for none."""
        return self.sender.submit_confirmations([mail for _, mail in outgoing]) if outgoing else None

    def holds_a_batch(self) -> bool:
        """A batch is in flight: a quiet poll settles it (through :meth:`handle`) instead of idling."""
        return self._in_flight is not None

    def _settle(self) -> None:
        """Wait until the in-flight batch's mails are accepted (retrying while SMTP is away), then commit it."""
        batch, self._in_flight = self._in_flight, None
        if batch is None:
            return
        try:
            if batch.handover is not None:
                self._deliver(batch.outgoing, batch.handover)
            self.finish(batch.raw_records, batch.dead_letters)
        except (KafkaError, BrokerUnavailable):
            # its dead letters were not acknowledged: read it again, with the batch after it (see rewind)
            self._rewind_too = batch.raw_records
            self.seek(first_offsets(batch.raw_records))
            raise

    def rewind(self, raw_records: list[Any]) -> None:
        """As the base's, from the in-flight batch before ``raw_records`` if that one failed too."""
        earlier, self._rewind_too = self._rewind_too, []
        super().rewind(earlier + raw_records)

    def _deliver(self, outgoing: list[tuple[Order, Confirmation]], handover: Handover) -> None:
        """Collect a hand-over, and send again what it left unsent, with back-off while SMTP is away.

        The relay records each mail in the ledger within the round of SMTP
        replies that accepted it (see :data:`RESEND_WINDOW`): so before this
        returns, and before the batch's offsets are committed, a redelivered
        confirmation finds its e-mail there. After an error the mails the
        ledger has by then are not sent again: a relay whose helper process
        died in the middle of a batch recorded what the server had accepted,
        though it could not say how many that was.
        """
        waiting = outgoing
        attempt = 0
        while True:
            sent = 0

            def accepted(mail: Confirmation, accepted_at: float) -> None:
                """The SMTP server accepted mail (and the relay recorded it): count it."""
                nonlocal sent
                order, expected = waiting[sent]
                if mail is not expected:
                    raise RuntimeError(f"{self.name}: SMTP replies came back out of order")
                sent += 1
                self.counters.add("sent")
                with self._latency_lock:
                    self._latencies.append((order.created_at, accepted_at))

            try:
                handover.result(accepted)
                return
            except (OSError, smtplib.SMTPException) as exc:
                recorded = self.ledger.emailed_among(order.order_id for order, _ in waiting[sent:])
                waiting = [(order, mail) for order, mail in waiting[sent:] if order.order_id not in recorded]
                attempt += 1
                self.counters.add("smtp_retries")
                if attempt == 1:
                    log.warning("email: SMTP %s:%s not answering (%s); retrying", self.sender.host, self.sender.port, exc)
                if self.wait(wait_seconds(attempt)):
                    raise _Interrupted from None  # stopping: leave the batch uncommitted, it is read again next time
                if not waiting:
                    return
                handover = self.sender.submit_confirmations([mail for _, mail in waiting])

    def latencies(self) -> list[tuple[float, float]]:
        """(order created_at, e-mail sent_at) pairs of recent e-mails."""
        with self._latency_lock:
            return list(self._latencies)

    def close(self) -> None:
        """Settle the batch in flight (unless the worker died), stop the SMTP relay, close the consumer as the base does."""
        if self._in_flight is not None and self._consumer is not None:
            try:
                self._settle()
            except (_Interrupted, KafkaError, BrokerUnavailable) as exc:
                log.info("%s: the last batch stays uncommitted (%s); it is read again next time", self.name, exc)
        self.sender.close()
        super().close()


class _Interrupted(Exception):
    """The service was stopped while waiting for SMTP."""
