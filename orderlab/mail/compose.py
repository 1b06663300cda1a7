"""The confirmation e-mail for a confirmed order, as data: pure, no network.

Kept apart from the SMTP client because three different places need it
without any of the sending: the e-mail role composes here and hands the
result to a :class:`~orderlab.mail.sender.MailSender`, the catcher's parser
reads the order headers defined here, and the UI formats prices with
:func:`money`.

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
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from ..events import ConfirmedOrder, decode_confirmed, encode_confirmed

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
    order_id: str = ""  # what the ledger records it by (the idempotency key); empty: not recorded by the sender


# A plain addr-spec (no display name, no quoting, no comments): what the fast
# path writes verbatim. Anything else goes through the email package.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_ID_SAFE = re.compile(r"[A-Za-z0-9._-]+")
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


def _header_lines(name: str, value: str) -> tuple[str, ...]:
    """``Name: value``; a long single-word value goes on a continuation line, as the email package folds it."""
    line = f"{name}: {value}"
    if len(line) > MAX_LINE and " " not in value:
        return f"{name}:", f" {value}"
    return (line,)


def _plain_lines(lines: list[str]) -> bool:
    """Whether every line is printable ASCII (no CR, LF or tab inside) of at most :data:`MAX_LINE` characters.

    What the email package would write as is: 7bit, nothing to fold or
    encode. Tested line by line with ``str`` methods, not by a regular
    expression over the whole text, which cost more than writing it.
    """
    for line in lines:
        if len(line) > MAX_LINE or not (line.isascii() and line.isprintable()):
            return False
    return True


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
    lines = [line for name, value in headers for line in _header_lines(name, value)]
    lines.append("")
    lines += _body_lines(record)
    fast = (
        _PLAIN_ADDRESS.fullmatch(order.customer_email) is not None
        and _PLAIN_ADDRESS.fullmatch(sender) is not None
        and _ID_SAFE.fullmatch(order_id) is not None
        and _plain_lines(lines)  # also: no line break inside a value
    )
    if not fast:
        message = render_confirmation(record, sender)
        return OutgoingMail(_envelope_sender(sender), order.customer_email, str(message["Message-ID"]), message=message,
                            order_id=order_id)
    return OutgoingMail(_envelope_sender(sender), order.customer_email, message_id, data="\r\n".join(lines).encode("ascii"),
                        order_id=order_id)


@dataclass(frozen=True)
class Confirmation:
    """A confirmation e-mail not composed yet: the confirmed order's record, encoded, and the From address.

    Why not the composed mail: composing costs about 12 µs an e-mail, and the
    e-mail role runs in the process whose one GIL every role shares. The
    SMTP relay sends the record to its child process, which composes there;
    a sender in this process composes just before it sends.
    """

    order_id: str
    record: bytes  # an order_confirmed value, as encode_confirmed writes it
    sender: str  # the From address

    @classmethod
    def of(cls, confirmed: ConfirmedOrder, sender: str, record: bytes | None = None) -> "Confirmation":
        """The confirmation of ``confirmed``; ``record``, the value it was decoded from, saves encoding it again."""
        return cls(confirmed.order.order_id, record if record is not None else encode_confirmed(confirmed), sender)

    def compose(self) -> OutgoingMail:
        """The mail itself (see :func:`compose_confirmation`)."""
        return compose_confirmation(decode_confirmed(self.record), self.sender)
