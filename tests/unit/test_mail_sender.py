"""Both SMTP senders keep the MailSender contract the e-mail role is written against."""

import inspect

import pytest

from orderlab.mail import MailSender, SmtpRelay, SmtpSender

CONTRACT_METHODS = ("send", "send_all", "send_confirmations", "submit_confirmations", "close")


def signature_mismatches(cls: type) -> list[str]:
    """Each contract method whose signature (names, kinds, defaults, resolved annotations) differs from MailSender's."""
    mismatches = []
    for name in CONTRACT_METHODS:
        method = getattr(cls, name, None)
        if method is None:
            mismatches.append(f"{name}: missing")
            continue
        expected = inspect.signature(getattr(MailSender, name), eval_str=True)
        actual = inspect.signature(method, eval_str=True)
        if actual != expected:
            mismatches.append(f"{name}{actual} != {name}{expected}")
    return mismatches


@pytest.mark.parametrize("cls", [SmtpSender, SmtpRelay])
def test_both_senders_satisfy_the_protocol(cls):
    sender = cls("127.0.0.1", 2525)  # nothing connects or starts before the first send
    try:
        assert isinstance(sender, MailSender)
        assert (sender.host, sender.port) == ("127.0.0.1", 2525)
        assert signature_mismatches(cls) == []
    finally:
        sender.close()


def test_the_check_tells_a_sender_that_breaks_the_contract():
    class ForgetsDelivered:
        host, port = "127.0.0.1", 2525

        def send(self, message): ...

        def send_all(self, mails): ...

        def send_confirmations(self, confirmations, delivered): ...

        def submit_confirmations(self, confirmations): ...

        def close(self) -> None: ...

    class NoClose:
        host, port = "127.0.0.1", 2525

        def send(self, message): ...

        def send_all(self, mails, delivered): ...

        def send_confirmations(self, confirmations, delivered): ...

        def submit_confirmations(self, confirmations): ...

    assert isinstance(ForgetsDelivered(), MailSender)  # isinstance only sees the names...
    assert [m.split("(")[0] for m in signature_mismatches(ForgetsDelivered)] == ["send", "send_all", "send_confirmations",
                                                                                "submit_confirmations"]  # ...the signatures tell
    assert not isinstance(NoClose(), MailSender)
    assert signature_mismatches(NoClose)[-1] == "close: missing"
