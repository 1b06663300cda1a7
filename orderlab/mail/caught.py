"""What the mail catcher caught: :class:`CaughtMail`, and reading one from the raw bytes.

Kept apart from both sides of the catcher: the child server only keeps raw
bytes (an :data:`Entry`) and never parses, and the parent parses a message
the first time somebody reads it; this is the one place that knows which
headers of :mod:`orderlab.mail.compose` a caught message is read by.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import Parser

from .compose import CREATED_AT_HEADER, ORDER_ID_HEADER

Entry = tuple[bytes, tuple[str, ...], float]  # (raw message, recipients, received_at): what the server hands over


@dataclass(frozen=True)
class CaughtMail:
    order_id: str | None
    to: str
    subject: str
    body: str
    received_at: float
    created_at: float | None
    message_id: str | None = None  # the Message-ID header, as the e-mail role recorded it in the ledger

    @property
    def latency_s(self) -> float | None:
        return None if self.created_at is None else self.received_at - self.created_at


# compat32, no header registry: several times cheaper than policy.default. The
# bytes are decoded as UTF-8 first, so raw UTF-8 headers (SMTPUTF8) read right.
_PARSER = Parser(policy=policy.compat32)


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = str(value).replace("\r\n", "").replace("\n", "").strip()  # unfold
    return str(make_header(decode_header(text))) if "=?" in text else text


def _text_body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            if part.get("Content-Transfer-Encoding", "7bit").strip().lower() in ("7bit", "8bit", "binary"):
                return str(part.get_payload())
            payload = part.get_payload(decode=True)  # quoted-printable or base64
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def parse_caught(content: bytes, recipients: tuple[str, ...], received_at: float) -> CaughtMail:
    """The message as the catcher hands it over (an :data:`Entry`), read into a :class:`CaughtMail`."""
    parsed = _PARSER.parsestr(content.decode("utf-8", errors="replace"))
    created = _header(parsed, CREATED_AT_HEADER)
    try:
        created_at = float(created) if created else None
    except ValueError:
        created_at = None
    return CaughtMail(
        order_id=_header(parsed, ORDER_ID_HEADER),
        to=", ".join(recipients),
        subject=_header(parsed, "Subject") or "",
        body=_text_body(parsed),
        received_at=received_at,
        created_at=created_at,
        message_id=_header(parsed, "Message-ID"),
    )
