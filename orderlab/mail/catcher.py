"""An SMTP server that keeps what it receives, seen from the pipeline's process:
the embedded default when no SMTP host is configured (the compose stack has
Mailpit instead).

The server runs in a child process (``python -m orderlab.mail.catcher_server``),
not in a thread of the pipeline's process: parsing SMTP costs about as much
CPU as the whole e-mail role, and in the same process it would be taken from
the roles under one GIL. Like Mailpit, it is a separate program; like Mailpit, it keeps the newest
messages (:data:`KEEP`) and forgets the oldest. The messages stay in the
child until somebody asks (:attr:`MailCatcher.messages`, :meth:`count`):
then this object takes the new ones over, keeps their raw bytes with their
arrival time, and parses each message (with :mod:`orderlab.mail.caught`)
the first time it is read. This module is only that parent side: it never
imports aiosmtpd, which only the child needs.

The child keeps a message before its ``250`` reply goes out, so a message
a client has seen accepted is always in the next answer.
"""

from __future__ import annotations

import pickle
import socket
import subprocess
import threading
import time
from typing import Any

from ..childproc import read_frame, read_frame_within, start_child, stop_child
from .caught import CaughtMail, Entry, parse_caught
from .catcher_server import KEEP

CHILD_MODULE = "orderlab.mail.catcher_server"  # started as ``python -m``
START_TIMEOUT_S = 30.0
POLL_S = 0.02  # wait_for asks the child this often


class MailCatcher:
    """``start()`` serves SMTP on 127.0.0.1 (a free port unless given); ``stop()`` ends it.

    It can be stopped and started again (a mail server going away and coming
    back); the messages caught so far are kept, the newest ``keep`` of them.
    ``reply_delay_s``: how long it takes to accept each message, as a real
    server does (``orderlab chaos`` uses it so that a kill lands in the
    middle of a batch).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, reply_delay_s: float = 0.0, keep: int = KEEP) -> None:
        if reply_delay_s < 0:
            raise ValueError(f"reply_delay_s must be >= 0, got {reply_delay_s}")
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.host = host
        self.port = port or _free_port(host)
        self.reply_delay_s = reply_delay_s
        self.keep = keep
        self._lock = threading.Lock()  # the child's pipes and what was taken over from it
        self._child: subprocess.Popen[bytes] | None = None
        self._earlier = 0  # messages accepted by the children that came before this one
        # the messages taken over, numbered across children: the oldest is number _first
        self._first = 0
        self._raw: list[Entry] = []
        self._parsed: list[CaughtMail] = []  # the first len(_parsed) of _raw, parsed

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "MailCatcher":
        """Start the server and return once it accepts connections (raises ``OSError`` if it cannot)."""
        with self._lock:
            if self._child is not None:
                return self
            child = start_child(CHILD_MODULE, self.host, str(self.port), repr(self.reply_delay_s), str(self.keep))
            try:
                kind, payload = read_frame_within(child, START_TIMEOUT_S, "mail catcher")
            except BaseException:
                child.kill()
                child.wait()
                raise
            if kind != "ready":
                child.wait(5)
                raise OSError(f"the mail catcher could not serve {self.host}:{self.port}: {payload}")
            self._child = child
        return self

    def stop(self) -> None:
        """Stop serving; the messages accepted before are kept (the newest ``keep``). Idempotent."""
        with self._lock:
            child = self._child
            if child is None:
                return
            try:
                # not serving any more first, then the last take-over: it gets every message the child accepted
                accepted, _first_kept = self._ask(b"stop")
                self._take_over()
            except OSError:  # it died: what it had is gone with it
                accepted = self._end() - self._earlier
            self._child = None
            try:
                if child.stdin is not None:
                    child.stdin.close()  # end of input: it stops serving and exits
            except OSError:
                pass
            stop_child(child)
            self._earlier += accepted

    @property
    def running(self) -> bool:
        return self._child is not None

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- talking to the child ------------------------------------------------------
    def _ask(self, request: bytes) -> Any:
        """The child's answer to one request line (see catcher_server.serve); ``OSError`` if it is gone."""
        child = self._child
        if child is None or child.stdin is None or child.stdout is None:
            raise OSError("the mail catcher is not running")
        try:
            child.stdin.write(request + b"\n")
            child.stdin.flush()
            kind, payload = read_frame(child.stdout)
        except (EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise OSError(f"the mail catcher process ended ({exc})") from None
        if kind == "error":
            raise OSError(f"the mail catcher: {payload}")
        return payload

    def _end(self) -> int:
        """One past the number of the newest message taken over."""
        return self._first + len(self._raw)

    def _take_over(self) -> None:
        """Take over what the running child accepted since the last time (a no-op when stopped)."""
        if self._child is None:
            return
        first, entries = self._ask(b"since %d" % max(0, self._end() - self._earlier))
        first += self._earlier
        if first > self._end():  # the child forgot some before they were asked for
            self._raw, self._parsed, self._first = [], [], first
        self._raw.extend(entries)
        extra = len(self._raw) - self.keep
        if extra > 0:
            del self._raw[:extra]
            del self._parsed[:extra]
            self._first += extra

    # -- what arrived ------------------------------------------------------------
    @property
    def messages(self) -> list[CaughtMail]:
        """The messages kept so far (the newest ``keep``), oldest first, parsed (each one once, on first read)."""
        with self._lock:
            try:
                self._take_over()
            except OSError:
                pass  # it died: what was taken over is all there is
            self._parsed.extend(parse_caught(*entry) for entry in self._raw[len(self._parsed):])
            return list(self._parsed)

    def count(self) -> int:
        """How many messages were accepted in all, forgotten ones included."""
        with self._lock:
            if self._child is None:
                return self._earlier
            try:
                accepted, _first_kept = self._ask(b"count")
            except OSError:  # it died: what it had is gone with it
                return self._end()
            return self._earlier + accepted

    def forgotten(self) -> int:
        """How many of the accepted messages are no longer kept (the oldest, beyond ``keep``)."""
        with self._lock:
            try:
                self._take_over()
            except OSError:
                pass
            return self._first

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` messages arrived, up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def clear(self) -> None:
        """Forget every message so far (the count of accepted ones goes on)."""
        with self._lock:
            if self._child is not None:
                try:
                    accepted, _first_kept = self._ask(b"clear")
                except OSError:
                    accepted = self._end() - self._earlier
                self._first = self._earlier + accepted
            else:
                self._first = self._end()
            self._raw, self._parsed = [], []


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
