import smtplib

from orderlab.events import ConfirmedOrder, LineItem, Order
from orderlab.mail import IDEMPOTENCY_HEADER, MailCatcher, SmtpSender, render_confirmation, wait_seconds


def confirmed() -> ConfirmedOrder:
    order = Order.create("order-123456789", "c1", "ada@example.com", [LineItem("KB-001", "Keyboard", 2, 8999)], created_at=1.0)
    return ConfirmedOrder(order, "pay_42", 2.0)


def test_message_names_the_order_and_total():
    message = render_confirmation(confirmed(), "shop@example.com")
    assert message["To"] == "ada@example.com"
    assert message[IDEMPOTENCY_HEADER] == "order-123456789"
    body = message.get_content()
    assert "2 x Keyboard" in body and "179.98 EUR" in body and "pay_42" in body


def test_real_smtp_round_trip_over_one_connection():
    with MailCatcher() as catcher:
        sender = SmtpSender(catcher.host, catcher.port)
        for _ in range(3):
            sender.send(render_confirmation(confirmed(), "shop@example.com"))
        sender.close()
        assert catcher.wait_for(3, timeout=10)
        mail = catcher.messages[0]
    assert mail.order_id == "order-123456789" and mail.to == "ada@example.com"
    assert mail.created_at == 1.0 and mail.latency_s > 0


def test_sender_raises_when_no_server():
    catcher = MailCatcher()  # picked a free port but never started
    sender = SmtpSender(catcher.host, catcher.port, timeout=2)
    try:
        sender.send(render_confirmation(confirmed(), "shop@example.com"))
    except (OSError, smtplib.SMTPException):
        pass
    else:
        raise AssertionError("sending to a closed port must fail")


def test_backoff_grows_and_is_bounded():
    assert [wait_seconds(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert wait_seconds(30) == 5.0
