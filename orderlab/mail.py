"""E-mail: the message for a confirmed order (pure), and an SMTP sender that
keeps its connections open between messages and pipelines its commands
(:mod:`orderlab.smtprelay` runs it in a helper process for the busy pipeline).

Two ways to the same message: :func:`render_confirmation` builds an
``EmailMessage`` with the standard library (about 0.6 ms a message, most of it
in the ``email`` package's header registry), and :func:`compose_confirmation`
writes the same headers and body straight into bytes (a few microseconds),
falling back to the first whenever a value is not plain short ASCII, so that
non-ASCII names, long lines or odd addresses still get correct MIME encoding.
The e-mail role sends thousands a second, so it uses the second.
"""

from __future__ import annotations

import re
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Callable, Sequence

from .events import ConfirmedOrder

ORDER_ID_HEADER = "X-Orderlab-Order-Id"
# The order id doubles as the idempotency key: a receiving system (or the
# ledger, here) can tell a resent notification from a new one.
IDEMPOTENCY_HEADER = "Idempotency-Key"
CREATED_AT_HEADER = "X-Orderlab-Order-Created-At"


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


MESSAGE_ID_DOMAIN = "shop.example.com"


def _subject(order_id: str) -> str:
    return f"Your order {order_id[:8]} is confirmed"


def _body_lines(record: ConfirmedOrder) -> list[str]:
    order = record.order
    lines = [f"Thank you for your order {order.order_id}.", "", "You ordered:"]
    for item in order.items:
        lines.append(f"  {item.quantity} x {item.name} ({item.sku})  {money(item.total_cents, order.currency)}")
    lines += ["", f"Total charged: {money(order.total_cents, order.currency)}", f"Payment reference: {record.payment_id}", ""]
    return lines


def render_confirmation(record: ConfirmedOrder, sender: str) -> EmailMessage:
    order = record.order
    message = EmailMessage()
    message["From"] = sender
    message["To"] = order.customer_email
    message["Subject"] = _subject(order.order_id)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=order.order_id[:8], domain=MESSAGE_ID_DOMAIN)
    message[ORDER_ID_HEADER] = order.order_id
    message[IDEMPOTENCY_HEADER] = order.order_id
    message[CREATED_AT_HEADER] = repr(order.created_at)
    message.set_content("\n".join(_body_lines(record)))
    return message


@dataclass(frozen=True)
class OutgoingMail:
    """A message ready for SMTP: the envelope, and either its bytes or (fallback) an ``EmailMessage``."""

    sender: str
    recipient: str
    message_id: str
    data: bytes = b""
    message: EmailMessage | None = None


# A plain addr-spec (no display name, no quoting, no comments): what the fast
# path writes verbatim. Anything else goes through the email package.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_ID_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_PRINTABLE_LINES = re.compile(r"[\x20-\x7e\r\n]*")
MAX_LINE = 78  # what the email package folds headers and re-encodes body lines at
_date_cache: tuple[int, str] = (0, "")
_envelope_cache: dict[str, str] = {}


def _date_header(now: float) -> str:
    global _date_cache
    second = int(now)
    cached = _date_cache
    if cached[0] != second:
        cached = _date_cache = (second, formatdate(second, localtime=False))
    return cached[1]


def _header_line(name: str, value: str) -> str:
    """``Name: value``; a long single-word value goes on a continuation line, as the email package folds it."""
    line = f"{name}: {value}"
    if len(line) > MAX_LINE and " " not in value:
        return f"{name}:\r\n {value}"
    return line


def _envelope_sender(sender: str) -> str:
    address = _envelope_cache.get(sender)
    if address is None:
        address = _envelope_cache[sender] = parseaddr(sender)[1] or sender
    return address


def compose_confirmation(record: ConfirmedOrder, sender: str) -> OutgoingMail:
    """The confirmation for ``record`` as an :class:`OutgoingMail`, written directly as bytes when safe.

    The bytes carry the same headers and body as :func:`render_confirmation`
    (7bit text/plain, CRLF line ends). When a value would need MIME encoding
    or folding, the message is rendered by the email package instead.
    """
    order = record.order
    order_id = order.order_id
    message_id = make_msgid(idstring=order_id[:8], domain=MESSAGE_ID_DOMAIN)
    headers = (
        ("From", sender),
        ("To", order.customer_email),
        ("Subject", _subject(order_id)),
        ("Date", _date_header(time.time())),
        ("Message-ID", message_id),
        (ORDER_ID_HEADER, order_id),
        (IDEMPOTENCY_HEADER, order_id),
        (CREATED_AT_HEADER, repr(order.created_at)),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "7bit"),
        ("MIME-Version", "1.0"),
    )
    lines = [_header_line(name, value) for name, value in headers]
    lines.append("")
    lines += _body_lines(record)
    text = "\r\n".join(lines)
    crlf = text.count("\r\n")
    fast = (
        _PLAIN_ADDRESS.fullmatch(order.customer_email) is not None
        and _PLAIN_ADDRESS.fullmatch(sender) is not None
        and _ID_SAFE.fullmatch(order_id) is not None
        and _PRINTABLE_LINES.fullmatch(text) is not None
        and text.count("\n") == crlf and text.count("\r") == crlf  # no line break inside a value
        and max(map(len, text.split("\r\n"))) <= MAX_LINE
    )
    if not fast:
        message = render_confirmation(record, sender)
        return OutgoingMail(_envelope_sender(sender), order.customer_email, str(message["Message-ID"]), message=message)
    return OutgoingMail(_envelope_sender(sender), order.customer_email, message_id, data=text.encode("ascii"))


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
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, connections: int = 8) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connections = connections
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

        def count(mail: OutgoingMail) -> None:
            nonlocal accepted
            accepted += 1
            delivered(mail)

        for attempt in (1, 2):
            try:
                pool = self._all_connections()
                rest = mails[accepted:]
                if pool[0].has_extn("pipelining"):
                    self._pipeline(pool, rest, count)
                else:
                    for mail in rest:
                        self._send_one(pool[0], mail)
                        count(mail)
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                self._discard()  # a stale kept-alive connection: one fresh try
                if attempt == 2:
                    raise
            except BaseException:
                self._discard()  # mid-pipeline the session state is unknown: start over next time
                raise

    @staticmethod
    def _send_one(smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
        if mail.message is not None:
            smtp.send_message(mail.message, mail.sender, [mail.recipient])
        else:
            smtp.sendmail(mail.sender, [mail.recipient], mail.data)

    def _pipeline(self, pool: list[smtplib.SMTP], mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None]) -> None:
        """Rounds: every connection gets its waiting content plus the next envelope in one write,
        then every connection's replies are read, in connection order (so in the order of ``mails``)."""
        pending: list[OutgoingMail | None] = [None] * len(pool)  # DATA got 354: content goes out next round
        position = 0
        while position < len(mails) or any(mail is not None for mail in pending):
            if position < len(mails) and mails[position].message is not None and not any(pending):
                # needs the email package's path (SMTPUTF8, MIME encoding): on its own, in order
                self._send_one(pool[0], mails[position])
                delivered(mails[position])
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


def received_latency(created_at_header: str | None, received_at: float | None = None) -> float | None:
    if not created_at_header:
        return None
    try:
        return (time.time() if received_at is None else received_at) - float(created_at_header)
    except ValueError:
        return None
