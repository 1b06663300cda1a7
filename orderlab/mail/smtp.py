"""The SMTP client: :class:`SmtpSender`, which keeps its connections open
between messages and pipelines its commands, and the back-off between retries.

Kept apart from composing (it only moves bytes it is given) and from the relay
(this is what the relay's child process runs, and what sends a few mails
directly when a batch is too small for the hop to the child).
"""

from __future__ import annotations

import re
import smtplib
import time
from email.message import EmailMessage
from typing import Callable, Sequence

from .compose import Confirmation, OutgoingMail
from .sender import Handover, Settled


class SmtpSender:
    """Sends messages over reused SMTP connections, reconnecting when one drops.

    :meth:`send_all` uses command pipelining (RFC 2920) when the server
    offers it: a message's content goes in one write with the next message's
    MAIL, RCPT and DATA commands, so each message costs one round trip to the
    server instead of four. It also keeps ``connections`` of them busy at
    once, message *n* on connection *n mod k*: in a process full of threads
    a thread that blocks on a reply waits again for the GIL when the reply
    comes (up to the 5 ms switch interval), and one such wait then serves
    *k* messages instead of one. Every message is still its own SMTP
    transaction, confirmed by its own 250 reply, and reported as delivered
    in the order given.

    ``journal``, when given, is called with the mails the server accepted
    since its last call, once per round of replies and always before the
    content of any further message goes out (and once more when
    :meth:`send_all` ends, also by an error). Whoever writes the journal
    down durably (the e-mail role: the ledger) then never has more than one
    round, ``connections`` messages, accepted by the server and not yet
    written down: what a crash can make it send again.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, connections: int = 8,
                 journal: Callable[[Sequence[OutgoingMail]], None] | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connections = connections
        self.journal = journal
        self._pool: list[smtplib.SMTP] = []

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connection(self) -> smtplib.SMTP:
        if not self._pool:
            self._pool.append(self._connect())
        return self._pool[0]

    def _all_connections(self) -> list[smtplib.SMTP]:
        first = self._connection()
        if first.has_extn("pipelining"):
            while len(self._pool) < self.connections:
                self._pool.append(self._connect())
        return list(self._pool)

    def send(self, message: EmailMessage | OutgoingMail) -> None:
        """Send one message; raises ``OSError``/``smtplib.SMTPException`` when the server is away."""
        for attempt in (1, 2):
            smtp = self._connection()
            try:
                if isinstance(message, EmailMessage):
                    smtp.send_message(message)
                else:
                    self._send_one(smtp, message)
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                self.close()  # a stale kept-alive connection: one fresh try
                if attempt == 2:
                    raise

    def send_all(self, mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None]) -> None:
        """Send ``mails``; ``delivered(mail)`` is called, in order, as soon as the server accepted each.

        Raises like :meth:`send`. What was reported as delivered is always a
        prefix of ``mails``; a mail not reported was not accepted (or its
        answer was lost with the connection): send it again.
        """
        accepted = 0
        unjournaled: list[OutgoingMail] = []

        def count(mail: OutgoingMail) -> None:
            nonlocal accepted
            accepted += 1
            if self.journal is not None:
                unjournaled.append(mail)
            delivered(mail)

        def checkpoint() -> None:
            """Hand what was accepted since the last checkpoint to the journal (before more content goes out)."""
            if unjournaled and self.journal is not None:
                self.journal(list(unjournaled))
                unjournaled.clear()

        try:
            for attempt in (1, 2):
                try:
                    pool = self._all_connections()
                    rest = mails[accepted:]
                    if pool[0].has_extn("pipelining"):
                        self._pipeline(pool, rest, count, checkpoint)
                    else:
                        for mail in rest:
                            self._send_one(pool[0], mail)
                            count(mail)
                            checkpoint()
                    return
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    self._discard()  # a stale kept-alive connection: one fresh try
                    if attempt == 2:
                        raise
                except BaseException:
                    self._discard()  # mid-pipeline the session state is unknown: start over next time
                    raise
        finally:
            checkpoint()  # what was accepted before an error is journaled too

    def send_confirmations(self, confirmations: Sequence[Confirmation],
                           delivered: Callable[[Confirmation], None]) -> None:
        """Compose, then :meth:`send_all`; ``delivered`` gets the confirmation of each mail accepted, in order."""
        in_order = iter(confirmations)  # what send_all reports is a prefix, in order
        self.send_all([confirmation.compose() for confirmation in confirmations],
                      lambda _mail: delivered(next(in_order)))

    def submit_confirmations(self, confirmations: Sequence[Confirmation]) -> Handover:
        """:meth:`send_confirmations` now, in this thread; what it did comes back settled (an SMTP error too)."""
        accepted_at: list[float] = []
        try:
            self.send_confirmations(confirmations, lambda _confirmation: accepted_at.append(time.time()))
        except (OSError, smtplib.SMTPException) as exc:
            return Settled(confirmations, accepted_at, exc)
        return Settled(confirmations, accepted_at)

    @staticmethod
    def _send_one(smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
        if mail.message is not None:
            smtp.send_message(mail.message, mail.sender, [mail.recipient])
        else:
            smtp.sendmail(mail.sender, [mail.recipient], mail.data)

    def _pipeline(self, pool: list[smtplib.SMTP], mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None],
                  checkpoint: Callable[[], None]) -> None:
        """Rounds: every connection gets its waiting content plus the next envelope in one write,
        then every connection's replies are read, in connection order (so in the order of ``mails``).
        ``checkpoint`` is called after each round's content replies, before the next round's content."""
        pending: list[OutgoingMail | None] = [None] * len(pool)  # DATA got 354: content goes out next round
        position = 0
        while position < len(mails) or any(mail is not None for mail in pending):
            if position < len(mails) and mails[position].message is not None and not any(pending):
                # needs the email package's path (SMTPUTF8, MIME encoding): on its own, in order
                self._send_one(pool[0], mails[position])
                delivered(mails[position])
                checkpoint()
                position += 1
                continue
            assigned: list[OutgoingMail | None] = []
            for index, smtp in enumerate(pool):
                mail = None
                if position < len(mails) and mails[position].message is None:
                    mail = mails[position]
                    position += 1
                chunk = _data_block(pending[index].data) if pending[index] is not None else b""  # type: ignore[union-attr]
                if mail is not None:
                    chunk += b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (mail.sender.encode("ascii"), mail.recipient.encode("ascii"))
                if chunk:
                    smtp.send(chunk)
                assigned.append(mail)
            # first every content's answer (the earlier messages, in order), then the new envelopes':
            # a refused envelope then never leaves an earlier, accepted message unreported
            for index, smtp in enumerate(pool):
                waiting = pending[index]
                if waiting is not None:
                    _expect_accepted(smtp, waiting)
                    delivered(waiting)
                    pending[index] = None
            checkpoint()
            for index, smtp in enumerate(pool):
                if assigned[index] is not None:
                    _expect_envelope(smtp, assigned[index])  # type: ignore[arg-type]
                    pending[index] = assigned[index]

    def close(self) -> None:
        pool, self._pool = self._pool, []
        for smtp in pool:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _discard(self) -> None:
        """Drop the connections without QUIT: one may be inside DATA, where QUIT would be read as content."""
        pool, self._pool = self._pool, []
        for smtp in pool:
            smtp.close()


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _data_block(data: bytes) -> bytes:
    """Message content as sent after DATA: dot-stuffed, CRLF-terminated, then the end marker."""
    block = _LEADING_DOT.sub(b"..", data)
    if not block.endswith(b"\r\n"):
        block += b"\r\n"
    return block + b".\r\n"


def _expect_envelope(smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
    """Read the three replies to a pipelined MAIL, RCPT, DATA."""
    mail_code, mail_reply = smtp.getreply()
    rcpt_code, rcpt_reply = smtp.getreply()
    data_code, data_reply = smtp.getreply()
    if mail_code != 250:
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, mail.sender)
    if rcpt_code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({mail.recipient: (rcpt_code, rcpt_reply)})
    if data_code != 354:
        raise smtplib.SMTPDataError(data_code, data_reply)


def _expect_accepted(smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
    code, reply = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def wait_seconds(attempt: int) -> float:
    """Back-off between SMTP retries: 0.2 s doubling to 5 s."""
    return min(5.0, 0.2 * 2 ** max(0, attempt - 1))
