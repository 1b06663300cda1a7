"""The child process of :class:`~orderlab.mail.relay.SmtpRelay`
(``python -m orderlab.mail.relay_child HOST PORT TIMEOUT CONNECTIONS [LEDGER_FILE]``).

Kept apart from the parent side because it is a program of its own: it
reads batches of mails in frames on stdin, sends them with an
:class:`~orderlab.mail.smtp.SmtpSender` under a GIL of its own, and answers
each with (when the server accepted each mail it accepted, the error that stopped the rest).

With a ledger file it records each round of accepted mails there before it
sends more (see :mod:`orderlab.mail.relay`), and it stops at the end of a
round once its parent is gone: a killed role leaves no helper behind that
goes on sending mails nobody will commit.
"""

from __future__ import annotations

import os
import pickle
import smtplib
import sys
import time
from typing import Callable, Sequence

from ..childproc import child_streams, read_frame, write_frame
from ..ledger import Ledger
from .compose import Confirmation, OutgoingMail
from .relay import ledger_journal
from .smtp import SmtpSender


class ParentGone(Exception):
    """The process that started this child ended (it was killed): stop sending."""


def _journal(ledger_file: str | None, parent: int) -> tuple[Ledger | None, Callable[[Sequence[OutgoingMail]], None]]:
    """The ledger (if any) and a journal that records into it, then checks that the parent still runs."""
    ledger = Ledger(ledger_file) if ledger_file else None
    record = ledger_journal(ledger) if ledger is not None else None

    def journal(mails: Sequence[OutgoingMail]) -> None:
        if record is not None:
            record(mails)
        if os.getppid() != parent:  # re-parented: the role's process died
            raise ParentGone(f"the e-mail role's process {parent} ended")

    return ledger, journal


def _portable(error: BaseException | None) -> BaseException | None:
    """The error itself if it survives pickling, else an SMTPException with its text."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object, checked before it crosses
        return error
    except Exception:  # noqa: BLE001
        return smtplib.SMTPException(f"{type(error).__name__}: {error}")


def _relay_main(argv: list[str]) -> int:
    """The child of :class:`~orderlab.mail.relay.SmtpRelay`: answer each batch with (when each accepted mail was accepted, error)."""
    host, port, timeout, connections = argv[0], int(argv[1]), float(argv[2]), int(argv[3])
    ledger, journal = _journal(argv[4] if len(argv) > 4 else None, os.getppid())
    frames, out = child_streams()
    sender = SmtpSender(host, port, timeout=timeout, connections=connections, journal=journal)
    write_frame(out, "ready", None)
    try:
        while True:
            try:
                kind, payload = read_frame(frames)
            except EOFError:
                return 0
            accepted_at: list[float] = []  # when each accepted mail's 250 reply was read

            def count(_mail: OutgoingMail | Confirmation) -> None:
                accepted_at.append(time.time())

            error: BaseException | None = None
            try:
                if kind == "send_all":
                    sender.send_all(payload, count)
                elif kind == "send_confirmations":
                    sender.send_confirmations([Confirmation(*fields) for fields in payload], count)
                else:
                    sender.send(payload)
                    accepted_at.append(time.time())
            except ParentGone:
                return 0
            except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
                error = exc
            write_frame(out, "result", (accepted_at, _portable(error)))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        sender.close()
        if ledger is not None:
            ledger.close()


if __name__ == "__main__":
    sys.exit(_relay_main(sys.argv[1:]))
