"""The contract of an SMTP sender, as the e-mail role uses it: :class:`MailSender`.

Two classes fulfil it: :class:`~orderlab.mail.smtp.SmtpSender` talks SMTP in
the calling process, :class:`~orderlab.mail.relay.SmtpRelay` hands the same
calls to a child process. The role is written against this protocol, not
against either class, so that swapping one for the other is a one-line
change; it sits apart from both so that neither has to import the other
to share it. ``tests/unit/test_mail_sender.py`` checks that both satisfy it.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Callable, Protocol, Sequence, runtime_checkable

from .compose import Confirmation, OutgoingMail

Accepted = Callable[[Confirmation, float], None]
"""Told of each mail the server accepted: its confirmation and when the 250 reply came (``time.time()``)."""


class Handover(Protocol):
    """Confirmations handed to a sender, perhaps still on their way (see :meth:`MailSender.submit_confirmations`)."""

    def result(self, accepted: Accepted) -> None:
        """Wait until the sender is done with them; ``accepted`` is called, in order, for each mail the
        server accepted, then what stopped the rest (if anything) is raised, exactly as with
        :meth:`MailSender.send_confirmations`."""
        ...


class Settled:
    """A :class:`Handover` already done: what the server accepted, when, and the error that stopped the rest."""

    def __init__(self, confirmations: Sequence[Confirmation], accepted_at: Sequence[float],
                 error: BaseException | None = None) -> None:
        self.confirmations = confirmations
        self.accepted_at = accepted_at  # one time per accepted mail: a prefix of confirmations
        self.error = error

    def result(self, accepted: Accepted) -> None:
        for confirmation, at in zip(self.confirmations, self.accepted_at):
            accepted(confirmation, at)
        if self.error is not None:
            raise self.error


@runtime_checkable
class MailSender(Protocol):
    """Sends e-mails to one SMTP server; raises ``OSError`` or ``smtplib.SMTPException`` when it is away."""

    host: str  # the SMTP server, for messages about it
    port: int

    def send(self, message: EmailMessage | OutgoingMail) -> None:
        """Send one message."""
        ...

    def send_all(self, mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None]) -> None:
        """Send ``mails``; ``delivered(mail)`` is called, in order, for each mail the server accepted.

        What was reported as delivered, when this raises, is always a prefix
        of ``mails``; a mail not reported was not accepted (or its answer was
        lost with the connection): send it again.
        """
        ...

    def send_confirmations(self, confirmations: Sequence[Confirmation],
                           delivered: Callable[[Confirmation], None]) -> None:
        """Compose each confirmation's mail and send them all, exactly as :meth:`send_all` does."""
        ...

    def submit_confirmations(self, confirmations: Sequence[Confirmation]) -> Handover:
        """As :meth:`send_confirmations`, but the caller may do other work before asking for the
        :meth:`~Handover.result`; hand-overs are settled in the order they were submitted. A sender
        that works in the caller's thread is done before this returns."""
        ...

    def close(self) -> None:
        """Let go of the connections (and any helper process); the next call opens them again."""
        ...
