"""An SMTP server that keeps what it receives, seen from the pipeline's process:
the embedded default when no SMTP host is configured (the compose stack has
Mailpit instead).

The server runs in a child process (``python -m orderlab.mail.catcher_server``),
not in a thread of the pipeline's process: parsing SMTP costs about as much
CPU as the whole e-mail role, and in the same process it would be taken from
the roles under one GIL. Like Mailpit, it is a separate program; unlike
Mailpit, it hands every message it accepted back to this object, which
keeps the raw bytes with their arrival time and parses a message (with
:mod:`orderlab.mail.caught`) the first time somebody reads it. This module
is only that parent side: it never imports aiosmtpd, which only the child needs.

What the catcher has accepted is what :meth:`MailCatcher.count` and
:attr:`MailCatcher.messages` report: they first ask the child for everything
it has, so a message whose ``250`` reply a client has seen is never missing.
"""

from __future__ import annotations

import pickle
import socket
import subprocess
import threading
from typing import IO, Any

from ..childproc import read_frame, read_frame_within, start_child, stop_child
from .caught import CaughtMail, Entry, parse_caught

CHILD_MODULE = "orderlab.mail.catcher_server"  # started as ``python -m``
START_TIMEOUT_S = 30.0


class MailCatcher:
    """``start()`` serves SMTP on 127.0.0.1 (a free port unless given); ``stop()`` ends it.

    It can be stopped and started again (a mail server going away and coming
    back); the messages caught so far are kept. ``reply_delay_s``: how long
    it takes to accept each message, as a real server does (``orderlab
    chaos`` uses it so that a kill lands in the middle of a batch).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, reply_delay_s: float = 0.0) -> None:
        if reply_delay_s < 0:
            raise ValueError(f"reply_delay_s must be >= 0, got {reply_delay_s}")
        self.host = host
        self.port = port or _free_port(host)
        self.reply_delay_s = reply_delay_s
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
            child = start_child(CHILD_MODULE, self.host, str(self.port), repr(self.reply_delay_s))
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
                    if child.stdin is not None:
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
            if child is None or child.stdin is None or self._reader_done:
                return
            self._barriers_sent += 1
            wanted = self._barriers_sent
            try:
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
            self._parsed.extend(parse_caught(*entry) for entry in fresh)
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


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
