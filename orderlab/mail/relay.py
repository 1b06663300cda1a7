"""The e-mail role's SMTP conversation, held by a helper process: the parent side.

An SMTP conversation is one small system call after another. In the
pipeline's process every one of them lets go of the GIL and then waits to
get it back behind the busy roles (up to the 5 ms switch interval): there
the e-mail role managed a few hundred e-mails a second, while the same
sender alone does thousands. :class:`SmtpRelay` hands each batch to a child
process (``python -m orderlab.mail.relay_child``) in one frame; the child,
with a GIL of its own, runs an :class:`~orderlab.mail.smtp.SmtpSender` and
answers in one frame when the server accepted each mail and what went wrong.
The e-mail role's confirmations cross as their records' bytes and are
composed in the child too (:meth:`SmtpRelay.send_confirmations`), which
takes composing off the pipeline's GIL as well.

Given the role's ledger, the child also writes each mail the server
accepted into it, in one SQLite transaction per round of replies and before
the next round's content goes out (see ``journal`` in
:class:`~orderlab.mail.smtp.SmtpSender`). That is done in the child, where the
250 replies arrive, rather than in the role when the batch comes back: a
process killed in the middle of a batch of 256 then leaves at most one round
(``connections`` mails) accepted and unrecorded, instead of the whole batch,
and recording costs the role no extra round trip to the child.

This module is what runs in the pipeline's process; the child's loop is in
:mod:`orderlab.mail.relay_child`, which the parent never imports.
"""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage
from typing import Any, Callable, Sequence

from ..childproc import read_frame, read_frame_within, start_child, stop_child, write_frame
from ..ledger import Ledger
from .compose import Confirmation, OutgoingMail
from .sender import Accepted, Handover
from .smtp import SmtpSender

CHILD_MODULE = "orderlab.mail.relay_child"  # started as ``python -m``


def ledger_journal(ledger: Ledger) -> Callable[[Sequence[OutgoingMail]], None]:
    """A sender's ``journal`` that records accepted mails in ``ledger`` by order id, in one transaction per call."""

    def record(mails: Sequence[OutgoingMail]) -> None:
        ledger.record_emails((mail.order_id, mail.message_id) for mail in mails if mail.order_id)

    return record


class SmtpRelay:
    """An :class:`~orderlab.mail.smtp.SmtpSender` in a child process: another
    :class:`~orderlab.mail.sender.MailSender`.

    What counts as delivered, and when an error is raised (the child's own
    exception, or ``SMTPServerDisconnected`` when the child ended), is
    exactly as with the sender itself; the child starts on first use and
    again after it ended. With ``ledger``, every accepted mail (with an
    order id) is recorded there within its round of replies, by the child or,
    for a batch sent directly, in this process.
    """

    START_TIMEOUT_S = 30.0

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, connections: int = 8, inline_up_to: int = 4,
                 ledger: Ledger | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connections = connections
        self.ledger_file = ledger.file if ledger is not None else None
        # a handful of mails (a quiet moment) go out directly: the hop to the
        # child would cost them more than the few GIL waits it saves
        self.inline_up_to = inline_up_to
        self._inline = SmtpSender(host, port, timeout=timeout, connections=1,
                                  journal=ledger_journal(ledger) if ledger is not None else None)
        self._child: Any = None
        self._lock = threading.Lock()  # one request or answer crosses the pipes at a time
        self._issued = 0  # tickets: requests written to a child, in order
        self._answered = 0  # requests whose answer was read (or lost with its child)
        self._answers: dict[int, tuple[list[float], BaseException | None]] = {}  # read, not yet collected

    def _relay(self) -> Any:
        if self._child is None:
            child = start_child(CHILD_MODULE, self.host, str(self.port), repr(self.timeout), str(self.connections),
                                *([self.ledger_file] if self.ledger_file else []))
            try:
                read_frame_within(child, self.START_TIMEOUT_S, "SMTP relay")
            except BaseException:
                child.kill()
                child.wait()
                raise
            self._child = child
        return self._child

    def _submit(self, kind: str, payload: Any) -> int:
        """Write one request to the child without waiting for its answer; its ticket, for :meth:`_answer`.

        The child reads the next request only when it has answered the last,
        so a request written while it is busy waits in the pipe (and a large
        one holds up the writer until the child gets to it): the e-mail role
        submits a batch only after it collected the one before.
        """
        with self._lock:
            child = self._relay()  # before the ticket: a child that does not start raises, and owes no answer
            ticket = self._issued
            self._issued += 1
            try:
                write_frame(child.stdin, kind, payload)
            except (EOFError, OSError, ValueError) as exc:
                self._lost(exc)
            return ticket

    def _answer(self, ticket: int) -> tuple[list[float], BaseException | None]:
        """Wait for the child's answer to request ``ticket``: when each accepted mail's reply came, and the error.

        Answers come in the order of the requests, so the ones before are
        read (and kept for their callers) first.
        """
        with self._lock:
            while ticket not in self._answers:  # the tickets before it are answered first (or lost, all at once)
                try:
                    _, answer = read_frame(self._child.stdout)
                except (EOFError, OSError, ValueError) as exc:
                    self._lost(exc)
                    continue
                self._answers[self._answered] = answer
                self._answered += 1
            return self._answers.pop(ticket)

    def _lost(self, exc: BaseException) -> None:
        """The child ended (or its pipe broke): every request not yet answered fails; the next one starts a child.

        The child recorded in the ledger whatever the server accepted before
        that, though its answer saying so is lost; the e-mail role consults
        the ledger before it sends those mails again.
        """
        self._stop()
        for ticket in range(self._answered, self._issued):
            self._answers[ticket] = ([], smtplib.SMTPServerDisconnected(f"the SMTP relay process ended ({exc})"))
        self._answered = self._issued

    def _ask(self, kind: str, payload: Any) -> tuple[list[float], BaseException | None]:
        return self._answer(self._submit(kind, payload))

    def send(self, message: EmailMessage | OutgoingMail) -> None:
        """Send one message; raises ``OSError``/``smtplib.SMTPException`` when the server is away."""
        self._inline.send(message)

    def send_all(self, mails: Sequence[OutgoingMail], delivered: Callable[[OutgoingMail], None]) -> None:
        """As :meth:`SmtpSender.send_all`; for more than :attr:`inline_up_to` mails
        ``delivered`` is called once the batch came back from the child."""
        if len(mails) <= self.inline_up_to:
            self._inline.send_all(mails, delivered)
            return
        accepted_at, error = self._ask("send_all", list(mails))
        for mail in mails[:len(accepted_at)]:
            delivered(mail)
        if error is not None:
            raise error

    def send_confirmations(self, confirmations: Sequence[Confirmation],
                           delivered: Callable[[Confirmation], None]) -> None:
        """As :meth:`send_all`, but the child composes the mails: the role's process only passes the records on."""
        self.submit_confirmations(confirmations).result(lambda confirmation, _at: delivered(confirmation))

    def submit_confirmations(self, confirmations: Sequence[Confirmation]) -> Handover:
        """Hand the confirmations to the child and return at once; the child composes and sends them
        while the caller goes on (the e-mail role: reading its next batch).

        They cross as plain tuples, which pickle in a fraction of the time
        a dataclass takes. A handful go out directly (:attr:`inline_up_to`).
        """
        if len(confirmations) <= self.inline_up_to:
            return self._inline.submit_confirmations(confirmations)
        ticket = self._submit("send_confirmations", [(c.order_id, c.record, c.sender) for c in confirmations])
        return _Relayed(self, ticket, confirmations)

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            stop_child(child)

    def close(self) -> None:
        self._inline.close()
        with self._lock:
            self._stop()


class _Relayed:
    """A :class:`~orderlab.mail.sender.Handover` on its way through the relay's child."""

    def __init__(self, relay: SmtpRelay, ticket: int, confirmations: Sequence[Confirmation]) -> None:
        self._relay = relay
        self._ticket = ticket
        self._confirmations = confirmations

    def result(self, accepted: Accepted) -> None:
        accepted_at, error = self._relay._answer(self._ticket)  # noqa: SLF001 - the relay's own hand-over
        for confirmation, at in zip(self._confirmations, accepted_at):
            accepted(confirmation, at)
        if error is not None:
            raise error
