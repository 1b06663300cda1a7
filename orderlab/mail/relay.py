"""The e-mail role's SMTP conversation, held by a helper process: the parent side.

An SMTP conversation is one small system call after another. In the
pipeline's process every one of them lets go of the GIL and then waits to
get it back behind the busy roles (up to the 5 ms switch interval): there
the e-mail role managed a few hundred e-mails a second, while the same
sender alone does thousands. :class:`SmtpRelay` hands each batch to a child
process (``python -m orderlab.mail.relay_child``) in one frame; the child,
with a GIL of its own, runs an :class:`~orderlab.mail.smtp.SmtpSender` and
answers in one frame how many mails the server accepted and what went wrong.

This module is what runs in the pipeline's process; the child's loop is in
:mod:`orderlab.mail.relay_child`, which the parent never imports.
"""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage
from typing import Any, Callable, Sequence

from ..childproc import read_frame, read_frame_within, start_child, stop_child, write_frame
from .compose import OutgoingMail
from .smtp import SmtpSender

CHILD_MODULE = "orderlab.mail.relay_child"  # started as ``python -m``


class SmtpRelay:
    """An :class:`~orderlab.mail.smtp.SmtpSender` in a child process: another
    :class:`~orderlab.mail.sender.MailSender`.

    What counts as delivered, and when an error is raised (the child's own
    exception, or ``SMTPServerDisconnected`` when the child ended), is
    exactly as with the sender itself; the child starts on first use and
    again after it ended.
    """

    START_TIMEOUT_S = 30.0

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, connections: int = 8, inline_up_to: int = 4) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connections = connections
        # a handful of mails (a quiet moment) go out directly: the hop to the
        # child would cost them more than the few GIL waits it saves
        self.inline_up_to = inline_up_to
        self._inline = SmtpSender(host, port, timeout=timeout, connections=1)
        self._child: Any = None
        self._lock = threading.Lock()

    def _relay(self) -> Any:
        if self._child is None:
            child = start_child(CHILD_MODULE, self.host, str(self.port), repr(self.timeout), str(self.connections))
            try:
                read_frame_within(child, self.START_TIMEOUT_S, "SMTP relay")
            except BaseException:
                child.kill()
                child.wait()
                raise
            self._child = child
        return self._child

    def _ask(self, kind: str, payload: Any) -> tuple[int, BaseException | None]:
        with self._lock:
            child = self._relay()
            try:
                write_frame(child.stdin, kind, payload)
                _, (accepted, error) = read_frame(child.stdout)
            except (EOFError, OSError, ValueError) as exc:
                self._stop()
                raise smtplib.SMTPServerDisconnected(f"the SMTP relay process ended ({exc})") from None
        return accepted, error

    def send(self, message: EmailMessage | OutgoingMail) -> None:
        """Send one message; raises ``OSError``/``smtplib.SMTPException`` when the server is away."""
        self._inline.send(message)

    def send_all(self, mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None]) -> None:
        """As :meth:`SmtpSender.send_all`; for more than :attr:`inline_up_to` mails
        ``delivered`` is called once the batch came back from the child."""
        if len(mails) <= self.inline_up_to:
            self._inline.send_all(mails, delivered)
            return
        accepted, error = self._ask("send_all", list(mails))
        for mail in mails[:accepted]:
            delivered(mail)
        if error is not None:
            raise error

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            stop_child(child)

    def close(self) -> None:
        self._inline.close()
        with self._lock:
            self._stop()
