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

    def close(self) -> None:
        """Let go of the connections (and any helper process); the next call opens them again."""
        ...
