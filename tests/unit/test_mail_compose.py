"""The fast e-mail path: the bytes written directly must be the message the email package would make,
and the pipelined sender must report exactly the messages the server accepted."""

import smtplib
import time
from email import message_from_bytes, policy

import pytest

from orderlab.events import ConfirmedOrder, LineItem, Order
from orderlab.generator import OrderFactory
from orderlab.mail import MailCatcher, OutgoingMail, SmtpRelay, SmtpSender, compose_confirmation, render_confirmation


def confirmed(order_id="order-123456789", email="ada@example.com", name="Keyboard") -> ConfirmedOrder:
    order = Order.create(order_id, "c1", email, [LineItem("KB-001", name, 2, 8999)], created_at=1.5)
    return ConfirmedOrder(order, "pay_42", 2.0)


def test_composed_bytes_read_back_as_the_rendered_message():
    for record in [ConfirmedOrder(OrderFactory(seed=s, customers=20).make(), "pay_1", 3.0) for s in range(30)]:
        mail = compose_confirmation(record, "shop@example.com")
        assert mail.message is None, "a plain ASCII order takes the fast path"
        assert b"\n" not in mail.data.replace(b"\r\n", b"")
        parsed = message_from_bytes(mail.data, policy=policy.default)
        rendered = render_confirmation(record, "shop@example.com")
        assert list(parsed.keys()) == list(rendered.keys())
        for name in rendered.keys():
            if name not in ("Date", "Message-ID"):
                assert parsed[name] == rendered[name], name
        assert parsed["Message-ID"].strip() == mail.message_id  # a folded header reads back with its space, as the stdlib's own
        assert parsed.get_content().replace("\r\n", "\n") == rendered.get_content()


@pytest.mark.parametrize("record", [
    confirmed(email="zoë@example.com"),                  # needs SMTPUTF8
    confirmed(name="Tastatür"),                           # needs a MIME body encoding
    confirmed(name="x" * 120),                            # a line longer than 78
    confirmed(order_id="order with spaces"),              # not safe for a Message-ID
    confirmed(name="Key\r\nboard"),                       # a line break inside a value
    confirmed(name="Key\tboard"),                          # a control character
    confirmed(name="Key\rboard"), confirmed(name="Key\nboard"), confirmed(name="Keyboard\r"),  # a lone CR or LF
    confirmed(name="Key\x7fboard"),                        # DEL is not printable
])
def test_values_the_fast_path_cannot_write_go_through_the_email_package(record):
    mail = compose_confirmation(record, "shop@example.com")
    assert mail.message is not None and mail.data == b""
    assert mail.message_id == str(mail.message["Message-ID"])


def test_pipelined_sending_delivers_each_message_once_in_order():
    records = ([confirmed(order_id=f"order-{n}") for n in range(12)] + [confirmed(order_id="order-utf8", email="zoë@example.com")]
               + [confirmed(order_id=f"order-{n}") for n in range(12, 25)] + [confirmed(order_id="order-long", name="y" * 100)])
    mails = [compose_confirmation(r, "shop@example.com") for r in records]
    delivered: list[OutgoingMail] = []
    with MailCatcher() as catcher:
        sender = SmtpSender(catcher.host, catcher.port)
        sender.send_all(mails, delivered.append)
        sender.close()
        assert catcher.wait_for(len(mails), timeout=10)
        caught = catcher.messages
    assert delivered == mails  # reported in order, each once
    # several connections: the server may see them in another order
    assert sorted(m.order_id for m in caught) == sorted(r.order.order_id for r in records)
    by_id = {m.order_id: m for m in caught}
    assert by_id["order-utf8"].to == "zoë@example.com"
    assert "2 x Keyboard" in by_id["order-0"].body and by_id["order-0"].created_at == 1.5


class _Refusing:
    """An SMTP handler without PIPELINING that refuses one recipient."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.accepted: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address == self.refused:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.accepted.append(envelope.content)
        return "250 OK"


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_message_stops_the_batch_and_only_what_was_accepted_counts_as_delivered(pipelining):
    from aiosmtpd.controller import Controller

    from orderlab.mail.catcher import _free_port
    from orderlab.mail.catcher_server import _controller_class

    handler = _Refusing("bob@example.com")
    factory = _controller_class() if pipelining else Controller
    controller = factory(handler, hostname="127.0.0.1", port=_free_port("127.0.0.1"), ready_timeout=10)
    if pipelining:
        # advertise PIPELINING as the catcher does, on top of the refusing handler
        async def handle_EHLO(server, session, envelope, hostname, responses):  # noqa: N802
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        handler.handle_EHLO = handle_EHLO
    controller.start()
    try:
        mails = [compose_confirmation(confirmed(order_id=f"o-{n}", email=address), "shop@example.com")
                 for n, address in enumerate(["ada@example.com", "cy@example.com", "bob@example.com", "dee@example.com"])]
        delivered: list[OutgoingMail] = []
        sender = SmtpSender("127.0.0.1", controller.port)
        rest = list(mails)
        while rest:
            try:
                sender.send_all(rest, delivered.append)
                rest = []
            except smtplib.SMTPRecipientsRefused as exc:
                assert list(exc.recipients) == ["bob@example.com"]
                assert delivered == [m for m in mails if m in delivered] and mails[2] not in delivered  # a prefix, in order
                done = [m for m in rest if m in delivered]
                rest = [m for m in rest[len(done):] if m.recipient != "bob@example.com"]  # what a caller does: skip it
        assert delivered == [mails[0], mails[1], mails[3]]
        assert len(handler.accepted) == 3, "nothing sent twice, nothing lost"
        sender.close()
    finally:
        controller.stop()


def test_the_relay_process_sends_like_the_sender_and_raises_its_errors():
    mails = [compose_confirmation(confirmed(order_id=f"relay-{n}"), "shop@example.com") for n in range(40)]
    catcher = MailCatcher()
    relay = SmtpRelay(catcher.host, catcher.port, timeout=3, inline_up_to=0)  # every batch through the child
    try:
        with pytest.raises(OSError):  # nobody listens yet: the child's connection error comes back as is
            relay.send_all(mails, lambda mail: None)
        delivered: list[OutgoingMail] = []
        with catcher:
            relay.send_all(mails, delivered.append)
            relay.send(render_confirmation(confirmed(order_id="relay-single"), "shop@example.com"))
            assert delivered == mails
            assert catcher.count() == 41
            relay._child.kill()  # the helper dies: the next batch says so, the one after starts a new one
            relay._child.wait()
            with pytest.raises(smtplib.SMTPServerDisconnected):
                relay.send_all(mails[:1], delivered.append)
            relay.send_all(mails[:1], delivered.append)
            assert catcher.count() == 42
            relay.inline_up_to = 4  # a small batch goes out directly, no child involved
            relay._stop()
            relay.send_all(mails[:3], delivered.append)
            assert relay._child is None and catcher.count() == 45
    finally:
        relay.close()


@pytest.mark.parametrize("inline_up_to", [0, 100], ids=["composed in the child", "composed in this process"])
def test_confirmations_are_composed_where_they_are_sent_and_read_as_composed_here(inline_up_to):
    """The relay composes a confirmation in its child from the record's bytes: the same mail as composing it here."""
    from orderlab.events import encode_confirmed
    from orderlab.mail import Confirmation

    records = [confirmed(order_id=f"conf-{n}") for n in range(20)] + [confirmed(order_id="conf-utf8", email="zoë@example.com")]
    confirmations = [Confirmation.of(record, "shop@example.com", encode_confirmed(record)) for record in records]
    delivered: list[Confirmation] = []
    with MailCatcher() as catcher:
        relay = SmtpRelay(catcher.host, catcher.port, timeout=3, inline_up_to=inline_up_to)
        try:
            relay.send_confirmations(confirmations, delivered.append)
        finally:
            relay.close()
        assert catcher.wait_for(len(records), timeout=10)
        caught = catcher.messages
    assert delivered == confirmations, "every confirmation reported once, in order"
    assert [mail.order_id for mail in caught] == [record.order.order_id for record in records]
    for mail, record in zip(caught, records):
        here = message_from_bytes(compose_confirmation(record, "shop@example.com").data or
                                  render_confirmation(record, "shop@example.com").as_bytes(), policy=policy.default)
        assert mail.subject == here["Subject"] and mail.to == here["To"]
        assert mail.body.replace("\r\n", "\n").strip() == here.get_content().replace("\r\n", "\n").strip()


def test_a_confirmation_without_its_record_encodes_it():
    from orderlab.mail import Confirmation

    record = confirmed(order_id="conf-encoded")
    confirmation = Confirmation.of(record, "shop@example.com")
    assert confirmation.order_id == "conf-encoded"
    assert confirmation.compose().data.split(b"\r\n\r\n", 1)[1] == compose_confirmation(record, "shop@example.com").data.split(b"\r\n\r\n", 1)[1]


def test_hand_overs_to_the_relay_settle_in_order_and_a_dead_child_fails_every_one_outstanding():
    """submit_confirmations returns before the child is done; results come back per hand-over, in order."""
    from orderlab.events import encode_confirmed
    from orderlab.mail import Confirmation

    def confirmations(prefix: str, count: int) -> list[Confirmation]:
        return [Confirmation.of(record, "shop@example.com", encode_confirmed(record))
                for record in (confirmed(order_id=f"{prefix}-{n}") for n in range(count))]

    first, second, third = confirmations("first", 30), confirmations("second", 20), confirmations("third", 10)
    with MailCatcher() as catcher:
        relay = SmtpRelay(catcher.host, catcher.port, timeout=3, inline_up_to=0)
        try:
            started = time.time()
            handed = [relay.submit_confirmations(batch) for batch in (first, second)]
            accepted: list[tuple[Confirmation, float]] = []
            handed[1].result(lambda mail, at: accepted.append((mail, at)))  # the later one first: the earlier answer is kept
            handed[0].result(lambda mail, at: accepted.append((mail, at)))
            assert [mail for mail, _ in accepted] == second + first
            assert all(started <= at <= time.time() for _, at in accepted), "when the server accepted each one"
            assert catcher.wait_for(50, timeout=10)
        finally:
            relay.close()
    with MailCatcher(reply_delay_s=0.5) as slow_catcher:  # slow replies: the child is surely mid-batch when killed
        relay = SmtpRelay(slow_catcher.host, slow_catcher.port, timeout=3, inline_up_to=0)
        try:
            outstanding = relay.submit_confirmations(third)
            relay._child.kill()  # the helper dies with a hand-over outstanding: its result says so
            relay._child.wait()
            with pytest.raises(smtplib.SMTPServerDisconnected):
                outstanding.result(lambda mail, at: None)
            again: list[Confirmation] = []
            relay.submit_confirmations(third).result(lambda mail, at: again.append(mail))  # a new child
            assert again == third
        finally:
            relay.close()
