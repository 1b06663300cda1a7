"""An SMTP server that keeps what it receives: the embedded default when no
SMTP host is configured (the compose stack has Mailpit instead)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from .mail import CREATED_AT_HEADER, ORDER_ID_HEADER


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


class _Handler:
    def __init__(self, catcher: "MailCatcher") -> None:
        self._catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self._catcher._keep(envelope.content, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


class MailCatcher:
    """``start()`` serves SMTP on 127.0.0.1 (a free port unless given); ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._messages: list[CaughtMail] = []
        self._changed = threading.Condition()
        self._controller: Any = None

    def start(self) -> "MailCatcher":
        if self._controller is None:
            from aiosmtpd.controller import Controller

            self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)
            self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _keep(self, content: bytes, recipients: list[str]) -> None:
        parsed: EmailMessage = message_from_bytes(content, policy=policy.default)  # type: ignore[assignment]
        created = parsed.get(CREATED_AT_HEADER)
        body = parsed.get_body(preferencelist=("plain",))
        mail = CaughtMail(
            order_id=parsed.get(ORDER_ID_HEADER),
            to=", ".join(recipients),
            subject=str(parsed.get("Subject", "")),
            body=body.get_content() if body is not None else "",
            received_at=time.time(),
            created_at=float(created) if created else None,
        )
        with self._changed:
            self._messages.append(mail)
            self._changed.notify_all()

    @property
    def messages(self) -> list[CaughtMail]:
        with self._changed:
            return list(self._messages)

    def count(self) -> int:
        with self._changed:
            return len(self._messages)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` messages arrived, up to ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._messages) >= count, timeout)

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
