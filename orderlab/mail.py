"""E-mail: the message for a confirmed order (pure) and an SMTP sender that
keeps its connection open between messages."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .events import ConfirmedOrder

ORDER_ID_HEADER = "X-Orderlab-Order-Id"
# The order id doubles as the idempotency key: a receiving system (or the
# ledger, here) can tell a resent notification from a new one.
IDEMPOTENCY_HEADER = "Idempotency-Key"
CREATED_AT_HEADER = "X-Orderlab-Order-Created-At"


def money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def render_confirmation(record: ConfirmedOrder, sender: str) -> EmailMessage:
    order = record.order
    message = EmailMessage()
    message["From"] = sender
    message["To"] = order.customer_email
    message["Subject"] = f"Your order {order.order_id[:8]} is confirmed"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=order.order_id[:8], domain="shop.example.com")
    message[ORDER_ID_HEADER] = order.order_id
    message[IDEMPOTENCY_HEADER] = order.order_id
    message[CREATED_AT_HEADER] = repr(order.created_at)
    lines = [f"Thank you for your order {order.order_id}.", "", "You ordered:"]
    for item in order.items:
        lines.append(f"  {item.quantity} x {item.name} ({item.sku})  {money(item.total_cents, order.currency)}")
    lines += ["", f"Total charged: {money(order.total_cents, order.currency)}", f"Payment reference: {record.payment_id}", ""]
    message.set_content("\n".join(lines))
    return message


class SmtpSender:
    """Sends messages over one reused SMTP connection, reconnecting when it drops."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        """Send one message; raises ``OSError``/``smtplib.SMTPException`` when the server is away."""
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                self._smtp.send_message(message)
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                self.close()  # a stale kept-alive connection: one fresh try
                if attempt == 2:
                    raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


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
