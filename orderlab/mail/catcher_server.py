"""The mail catcher's child process: an aiosmtpd server
(``python -m orderlab.mail.catcher_server HOST PORT [REPLY_DELAY_S [KEEP]]``).

Kept apart from :mod:`orderlab.mail.catcher` because it is a program of its
own, and the only part of the package that needs aiosmtpd (imported when
the server starts, so that a missing aiosmtpd is reported to the parent in
one line). It keeps the newest accepted messages' raw bytes, and answers
the parent's requests on stdin with frames on stdout (see :func:`serve`);
it never parses a message.

Why the messages stay here until asked for: handed over as they came, the
pipeline's process spent about a tenth of its CPU taking them in, and kept
them all (a classroom hour at 1000 orders/s is some 3 million), while
nobody reads most of them.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from collections import deque
from typing import IO, Any

from ..childproc import child_streams, write_frame
from .caught import Entry

KEEP = 50_000  # messages kept (some 50 MB); the oldest are forgotten first, as Mailpit's max-messages does

# "<local@domain>" plus optional ESMTP parameters: what nearly every client sends.
_PLAIN_PATH = re.compile(r"<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL)


def _controller_class() -> Any:
    """aiosmtpd's threaded Controller, serving an SMTP class with a cheaper address parser.

    aiosmtpd parses every MAIL FROM and RCPT TO path with the email package's
    RFC 5322 header parser (and defines a typing.Protocol class per call):
    two thirds of its time per message. Plain ``<local@domain>`` paths are
    read with a regular expression here; anything else goes to aiosmtpd's parser.
    """
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    class FastPathSMTP(SMTP):
        _replies: list[bytes] | None = None

        async def push(self, status: Any) -> None:
            """Answer pipelined commands in one write: while the next command is
            already waiting in the input, keep the reply and send them together.
            (aiosmtpd writes each reply on its own: a pipelining client then
            wakes up once per reply instead of once per group.)"""
            if isinstance(status, str):
                status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
            if self._replies is None:
                self._replies = []
            self._replies.append(status + b"\r\n")
            if b"\n" in getattr(self._reader, "_buffer", b""):
                return  # more input to answer first; its reply will carry this one
            replies, self._replies = b"".join(self._replies), []
            self._writer.write(replies)
            await self._writer.drain()

        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            match = _PLAIN_PATH.fullmatch(arg.lstrip()) if arg else None
            if match is None:
                return super()._getaddr(arg)
            address, rest = match.group(1), match.group(2)
            if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
                return None, None
            return address, rest

    class FastPathController(Controller):
        def factory(self) -> SMTP:
            return FastPathSMTP(self.handler, **self.SMTP_kwargs)

    return FastPathController


class _Handler:
    """Keeps the newest ``keep`` accepted messages (an :data:`Entry` each) and how many were accepted in all.

    ``reply_delay_s``: how long it takes to accept each message (its 250 reply
    comes that much later), as a real server's checks and queue take; a
    client that goes away meanwhile has had nothing accepted.
    """

    def __init__(self, reply_delay_s: float = 0.0, keep: int = KEEP) -> None:
        self.lock = threading.Lock()
        self.kept: deque[Entry] = deque(maxlen=keep)
        self.accepted = 0
        self.reply_delay_s = reply_delay_s

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:  # noqa: N802
        """Advertise PIPELINING (RFC 2920): aiosmtpd reads commands in order from
        its stream, so a client may send MAIL, RCPT and DATA in one write."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        if self.reply_delay_s > 0:
            await asyncio.sleep(self.reply_delay_s)  # cancelled if the client goes away: nothing accepted
        # a tuple of strings, not aiosmtpd's list: the garbage collector stops
        # tracking it, so a long run's thousands of kept messages cost no GC time
        entry = (envelope.content, tuple(envelope.rcpt_tos), time.time())
        with self.lock:  # kept before the 250 goes out: a client that saw it accepted finds it here
            self.kept.append(entry)
            self.accepted += 1
        return "250 Message accepted for delivery"

    def answer(self, request: bytes) -> tuple[str, Any]:
        """One request line, answered: ``count``, ``since N``, ``clear``.

        Messages are numbered from 0 in the order they were accepted; the
        kept ones are the last ``len(kept)`` of those numbers.
        """
        words = request.split()
        with self.lock:
            first_kept = self.accepted - len(self.kept)
            if words == [b"count"]:
                return "count", (self.accepted, first_kept)
            if len(words) == 2 and words[0] == b"since" and words[1].isdigit():
                since = max(int(words[1]), first_kept)
                return "mail", (since, [self.kept[n - first_kept] for n in range(since, self.accepted)])
            if words == [b"clear"]:
                self.kept.clear()
                return "count", (self.accepted, self.accepted)
        return "error", f"unknown request {request!r}"


def serve(host: str, port: int, control: IO[bytes], out: IO[bytes], reply_delay_s: float = 0.0, keep: int = KEEP) -> None:
    """Serve SMTP until ``control`` ends; answer each request line on it with one frame on ``out``.

    Requests: ``count`` → ``("count", (accepted, first kept))``; ``since N``
    → ``("mail", (first, entries))``, the kept messages numbered N and up
    (from the first kept, if N was forgotten); ``clear`` forgets the kept ones;
    ``stop`` stops serving SMTP and answers as ``count`` (the requests go on being answered).
    """
    handler = _Handler(reply_delay_s, keep)
    try:
        controller = _controller_class()(handler, hostname=host, port=port, ready_timeout=10)
        controller.start()
    except Exception as exc:  # noqa: BLE001 - a taken port, a missing aiosmtpd: told to the parent in one line
        write_frame(out, "error", f"{type(exc).__name__}: {exc}")
        return
    write_frame(out, "ready", port)
    serving = True
    try:
        for line in control:
            if line.strip() == b"stop":
                # stop serving before the parent takes the last messages over: one accepted
                # after its last look, and before the child ended, would be lost with it
                if serving:  # a second stop only counts
                    controller.stop()
                    serving = False
                line = b"count"
            if line.strip():
                kind, payload = handler.answer(line)
                write_frame(out, kind, payload)
    finally:
        if serving:
            controller.stop()


def _main(argv: list[str]) -> int:
    host, port = argv[0], int(argv[1])
    reply_delay_s = float(argv[2]) if len(argv) > 2 else 0.0
    keep = int(argv[3]) if len(argv) > 3 else KEEP
    control, out = child_streams()
    try:
        serve(host, port, control, out, reply_delay_s, keep)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        try:
            out.close()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
