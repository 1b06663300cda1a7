"""An SMTP server that keeps what it receives: the embedded default when no
SMTP host is configured (the compose stack has Mailpit instead).

The server runs in a child process (``python -m orderlab.mailcatcher``), not
in a thread of the pipeline's process: parsing SMTP costs about as much CPU
as the whole e-mail role, and in the same process it would be taken from
the roles under one GIL. Like Mailpit, it is a separate program; unlike
Mailpit, it hands every message it accepted back to this object, which
keeps the raw bytes with their arrival time and parses a message the first
time somebody reads it.

What the catcher has accepted is what :meth:`MailCatcher.count` and
:attr:`MailCatcher.messages` report: they first ask the child for everything
it has, so a message whose ``250`` reply a client has seen is never missing.
"""

from __future__ import annotations

import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import Parser
from typing import IO, Any

from .childproc import child_streams, read_frame, read_frame_within, start_child, stop_child, write_frame
from .mail import CREATED_AT_HEADER, ORDER_ID_HEADER

START_TIMEOUT_S = 30.0
_BATCH_S = 0.003  # the child gathers messages this long before handing them over (fewer, larger frames)

Entry = tuple[bytes, tuple[str, ...], float]  # (raw message, recipients, received_at)


@dataclass(frozen=True)
class CaughtMail:
    order_id: str | None
    to: str
    subject: str
    body: str
    received_at: float
    created_at: float | None

    @property
    def latency_s(self) -> float | None:
        return None if self.created_at is None else self.received_at - self.created_at


class MailCatcher:
    """``start()`` serves SMTP on 127.0.0.1 (a free port unless given); ``stop()`` ends it.

    It can be stopped and started again (a mail server going away and coming
    back); the messages caught so far are kept.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._raw: list[Entry] = []
        self._parsed: list[CaughtMail] = []
        self._parse_lock = threading.Lock()
        self._changed = threading.Condition()
        self._lifecycle = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._reader_done = True
        self._barriers_sent = 0
        self._barriers_seen = 0

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "MailCatcher":
        """Start the server and return once it accepts connections (raises ``OSError`` if it cannot)."""
        with self._lifecycle:
            if self._child is not None:
                return self
            child = start_child("orderlab.mailcatcher", self.host, str(self.port))
            try:
                kind, payload = read_frame_within(child, START_TIMEOUT_S, "mail catcher")
            except BaseException:
                child.kill()
                child.wait()
                raise
            if kind != "ready":
                child.wait(5)
                raise OSError(f"the mail catcher could not serve {self.host}:{self.port}: {payload}")
            with self._changed:
                self._reader_done = False
            self._child = child
            self._reader = threading.Thread(target=self._receive, args=(child.stdout,), name="orderlab-mailcatcher", daemon=True)
            self._reader.start()
        return self

    def stop(self) -> None:
        """Stop serving; every message accepted before is kept. Idempotent."""
        with self._lifecycle:
            child, self._child = self._child, None
            if child is None:
                return
            with self._changed:  # not while _sync writes a barrier
                try:
                    assert child.stdin is not None
                    child.stdin.close()  # end of input: it stops serving, hands over the rest, exits
                except OSError:
                    pass
            stop_child(child)  # waits (the reader keeps taking what it hands over meanwhile)
            if self._reader is not None:
                self._reader.join(10)
                self._reader = None

    @property
    def running(self) -> bool:
        return self._child is not None

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- what arrived ------------------------------------------------------------
    def _receive(self, stream: IO[bytes]) -> None:
        try:
            while True:
                kind, payload = read_frame(stream)
                with self._changed:
                    if kind == "mail":
                        self._raw.extend(payload)
                    elif kind == "barrier":
                        self._barriers_seen = max(self._barriers_seen, payload)
                    self._changed.notify_all()
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        finally:
            with self._changed:
                self._reader_done = True
                self._changed.notify_all()

    def _sync(self, timeout: float = 10.0) -> None:
        """Wait until everything the server has accepted so far is here."""
        with self._changed:
            child = self._child
            if child is None or self._reader_done:
                return
            self._barriers_sent += 1
            wanted = self._barriers_sent
            try:
                assert child.stdin is not None
                child.stdin.write(b"%d\n" % wanted)
                child.stdin.flush()
            except (OSError, ValueError):
                return
            self._changed.wait_for(lambda: self._barriers_seen >= wanted or self._reader_done, timeout)

    @property
    def messages(self) -> list[CaughtMail]:
        """Every message so far, parsed (each one once, on first read)."""
        self._sync()
        with self._parse_lock:
            with self._changed:
                fresh = self._raw[len(self._parsed):]
            self._parsed.extend(_parse(*entry) for entry in fresh)
            return list(self._parsed)

    def count(self) -> int:
        self._sync()
        with self._changed:
            return len(self._raw)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` messages arrived, up to ``timeout`` seconds."""
        with self._changed:
            if self._changed.wait_for(lambda: len(self._raw) >= count, timeout):
                return True
        return self.count() >= count

    def clear(self) -> None:
        self._sync()
        with self._parse_lock, self._changed:
            self._raw.clear()
            self._parsed.clear()


# -- the server (runs in the child) --------------------------------------------------

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
    """Keeps each message with its arrival time until the forwarding loop hands it over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Entry] = []
        self.wake = threading.Event()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:  # noqa: N802
        """Advertise PIPELINING (RFC 2920): aiosmtpd reads commands in order from
        its stream, so a client may send MAIL, RCPT and DATA in one write."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        # a tuple of strings, not aiosmtpd's list: the garbage collector stops
        # tracking it, so a long run's thousands of kept messages cost no GC time
        entry = (envelope.content, tuple(envelope.rcpt_tos), time.time())
        with self.lock:
            self.pending.append(entry)
        self.wake.set()
        return "250 Message accepted for delivery"


def serve(host: str, port: int, control: IO[bytes], out: IO[bytes]) -> None:
    """Serve SMTP until ``control`` ends; hand accepted messages over on ``out``.

    A line with a number on ``control`` is a barrier: everything accepted
    before it is handed over, then the number is echoed.
    """
    handler = _Handler()
    try:
        controller = _controller_class()(handler, hostname=host, port=port, ready_timeout=10)
        controller.start()
    except Exception as exc:  # noqa: BLE001 - a taken port, a missing aiosmtpd: told to the parent in one line
        write_frame(out, "error", f"{type(exc).__name__}: {exc}")
        return
    write_frame(out, "ready", port)
    barriers: list[int] = []
    ended = threading.Event()

    def read_control() -> None:
        for line in control:
            if line.strip().isdigit():
                with handler.lock:
                    barriers.append(int(line))
                handler.wake.set()
        ended.set()
        handler.wake.set()

    threading.Thread(target=read_control, name="control", daemon=True).start()
    try:
        while True:
            handler.wake.wait()
            if not ended.is_set() and not barriers:
                time.sleep(_BATCH_S)  # let a few more messages join this frame
            handler.wake.clear()
            with handler.lock:
                batch, handler.pending = handler.pending, []
                answered, barriers[:] = list(barriers), []
            if batch:
                write_frame(out, "mail", batch)
            for number in answered:
                write_frame(out, "barrier", number)
            if ended.is_set():
                break
    finally:
        controller.stop()
        with handler.lock:
            rest = handler.pending
        if rest:
            write_frame(out, "mail", rest)


def _main(argv: list[str]) -> int:
    host, port = argv[0], int(argv[1])
    control, out = child_streams()
    try:
        serve(host, port, control, out)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        try:
            out.close()
        except OSError:
            pass
    return 0


# -- reading a caught message ---------------------------------------------------------

# compat32, no header registry: several times cheaper than policy.default. The
# bytes are decoded as UTF-8 first, so raw UTF-8 headers (SMTPUTF8) read right.
_PARSER = Parser(policy=policy.compat32)


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = str(value).replace("\r\n", "").replace("\n", "").strip()  # unfold
    return str(make_header(decode_header(text))) if "=?" in text else text


def _text_body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            if part.get("Content-Transfer-Encoding", "7bit").strip().lower() in ("7bit", "8bit", "binary"):
                return str(part.get_payload())
            payload = part.get_payload(decode=True)  # quoted-printable or base64
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def _parse(content: bytes, recipients: tuple[str, ...], received_at: float) -> CaughtMail:
    parsed = _PARSER.parsestr(content.decode("utf-8", errors="replace"))
    created = _header(parsed, CREATED_AT_HEADER)
    try:
        created_at = float(created) if created else None
    except ValueError:
        created_at = None
    return CaughtMail(
        order_id=_header(parsed, ORDER_ID_HEADER),
        to=", ".join(recipients),
        subject=_header(parsed, "Subject") or "",
        body=_text_body(parsed),
        received_at=received_at,
        created_at=created_at,
    )


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
