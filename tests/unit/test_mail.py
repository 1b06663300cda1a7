import smtplib
import threading
import time

from orderlab.events import ConfirmedOrder, LineItem, Order
from orderlab.mail import IDEMPOTENCY_HEADER, MailCatcher, SmtpSender, compose_confirmation, render_confirmation, wait_seconds


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


def numbered(n: int) -> ConfirmedOrder:
    order = Order.create(f"order-{n:09d}", "c1", "ada@example.com", [LineItem("KB-001", "Keyboard", 1, 8999)], created_at=1.0)
    return ConfirmedOrder(order, f"pay_{n}", 2.0)


def send_numbered(catcher: MailCatcher, numbers: range) -> None:
    sender = SmtpSender(catcher.host, catcher.port)
    for n in numbers:
        sender.send(render_confirmation(numbered(n), "shop@example.com"))
    sender.close()


def test_the_catcher_keeps_the_newest_messages_and_counts_them_all_across_a_restart():
    catcher = MailCatcher(keep=5)
    with catcher:
        send_numbered(catcher, range(8))
        assert catcher.count() == 8  # asked of the child: every accepted message, forgotten ones too
        assert [mail.order_id for mail in catcher.messages] == [f"order-{n:09d}" for n in range(3, 8)]
        assert catcher.forgotten() == 3
    assert catcher.count() == 8 and len(catcher.messages) == 5  # stopped: what it had is kept
    with catcher:
        send_numbered(catcher, range(8, 10))
        assert catcher.count() == 10
        assert [mail.order_id for mail in catcher.messages] == [f"order-{n:09d}" for n in range(5, 10)]
        catcher.clear()
        assert catcher.messages == [] and catcher.count() == 10 and catcher.forgotten() == 10
        send_numbered(catcher, range(10, 11))
        assert [mail.order_id for mail in catcher.messages] == ["order-000000010"]


def test_a_message_is_kept_by_the_catcher_before_the_client_sees_it_accepted():
    with MailCatcher() as catcher:
        sender = SmtpSender(catcher.host, catcher.port)
        for n in range(20):
            sender.send(render_confirmation(numbered(n), "shop@example.com"))
            assert catcher.count() == n + 1  # no waiting: the 250 reply came after it was kept
        sender.close()


def test_every_message_accepted_while_the_catcher_stops_is_kept():
    catcher = MailCatcher()
    catcher.start()
    accepted: list[str] = []

    def keep_sending() -> None:
        sender = SmtpSender(catcher.host, catcher.port, connections=4)
        mails = [compose_confirmation(numbered(n), "shop@example.com") for n in range(400)]
        try:
            sender.send_all(mails, lambda mail: accepted.append(mail.order_id))
        except (OSError, smtplib.SMTPException):
            pass  # the catcher stopped under it: what had been accepted is counted
        finally:
            sender.close()

    sending = threading.Thread(target=keep_sending)
    sending.start()
    deadline = time.monotonic() + 10
    while catcher.count() < 20 and time.monotonic() < deadline:
        time.sleep(0.002)
    catcher.stop()  # with mails in flight on four connections
    sending.join(10)
    kept = {mail.order_id for mail in catcher.messages}
    assert accepted and set(accepted) <= kept  # a 250 reply means the catcher has it
    assert catcher.count() == len(catcher.messages)
