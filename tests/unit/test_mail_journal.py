"""Accepted e-mails are written down within their round of SMTP replies: what a killed
e-mail role can send again is bounded by the connections (RESEND_WINDOW), not by a hand-over."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from aiosmtpd.controller import Controller

from orderlab.events import ConfirmedOrder, LineItem, Order
from orderlab.ledger import Ledger
from orderlab.mail import MailCatcher, OutgoingMail, SmtpRelay, SmtpSender, compose_confirmation
from orderlab.mail.catcher import _free_port
from orderlab.mail.compose import ORDER_ID_HEADER
from orderlab.services.email import RESEND_WINDOW, SMTP_CONNECTIONS


def mails(count: int, prefix: str = "journal") -> list[OutgoingMail]:
    return [
        compose_confirmation(
            ConfirmedOrder(Order.create(f"{prefix}-{n}", "c1", "ada@example.com", [LineItem("KB-001", "Keyboard", 1, 8999)],
                                        created_at=1.0), f"pay-{n}", 2.0),
            "shop@example.com",
        )
        for n in range(count)
    ]


def test_the_window_is_one_message_per_connection() -> None:
    assert RESEND_WINDOW == SMTP_CONNECTIONS == 16


def test_each_round_is_journaled_before_any_more_content_reaches_the_server() -> None:
    batch = mails(60)
    calls: list[tuple[int, int]] = []  # (mails in this call, messages the server had accepted by then)
    journaled = 0
    with MailCatcher() as catcher:

        def journal(accepted: Sequence[OutgoingMail]) -> None:
            nonlocal journaled
            journaled += len(accepted)
            calls.append((len(accepted), catcher.count()))

        sender = SmtpSender(catcher.host, catcher.port, connections=4, journal=journal)
        delivered: list[OutgoingMail] = []
        sender.send_all(batch, delivered.append)
        sender.close()
    assert delivered == batch and journaled == len(batch)
    assert all(1 <= size <= 4 for size, _ in calls), calls
    # at each call the server had accepted exactly what was journaled so far, this call included: nothing beyond
    running = 0
    for size, accepted_by_server in calls:
        running += size
        assert accepted_by_server == running, calls


class SlowHandler:
    """An SMTP server that takes ``delay_s`` to accept each message, and keeps the order ids it accepted."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.accepted: list[str] = []
        self._lock = threading.Lock()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:  # noqa: N802
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]  # as the catcher does: 8 connections, pipelined

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay_s)
        for line in envelope.content.decode(errors="replace").splitlines():
            if line.lower().startswith(ORDER_ID_HEADER.lower() + ":"):
                with self._lock:
                    self.accepted.append(line.split(":", 1)[1].strip())
        return "250 OK"

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)


def test_a_relay_killed_mid_batch_leaves_at_most_one_round_accepted_and_unrecorded(tmp_path: Path) -> None:
    handler = SlowHandler(delay_s=0.01)
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port("127.0.0.1"), ready_timeout=10)
    controller.start()
    ledger = Ledger(str(tmp_path / "ledger.db"))
    relay = SmtpRelay("127.0.0.1", controller.port, timeout=5, connections=SMTP_CONNECTIONS, inline_up_to=0, ledger=ledger)
    batch = mails(200)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            relay.send_all(batch, lambda mail: None)
        except BaseException as exc:  # noqa: BLE001 - the kill below ends the batch with an error
            errors.append(exc)

    try:
        relay._relay()  # the helper process, started before the clock
        sending = threading.Thread(target=send)
        sending.start()
        deadline = time.monotonic() + 20
        while handler.count() < 40 and time.monotonic() < deadline:
            time.sleep(0.002)
        relay._child.kill()  # SIGKILL, mid-batch
        sending.join(20)
        time.sleep(0.2)  # the server finishes what had reached it
        accepted = set(handler.accepted)
        recorded = set(ledger.emailed_ids())
        assert errors, "the kill ended the batch"
        assert 40 <= len(accepted) < len(batch), "the kill landed mid-batch"
        assert recorded <= accepted, "only accepted mails are recorded"
        assert len(accepted - recorded) <= SMTP_CONNECTIONS, (len(accepted), len(recorded))
    finally:
        relay.close()
        ledger.close()
        controller.stop()


def test_the_relay_records_what_it_sends_inline_and_through_its_helper(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "ledger.db"))
    with MailCatcher() as catcher:
        relay = SmtpRelay(catcher.host, catcher.port, timeout=5, inline_up_to=4, ledger=ledger)
        try:
            relay.send_all(mails(3, "inline"), lambda mail: None)  # directly, in this process
            relay.send_all(mails(50, "child"), lambda mail: None)  # through the helper process
        finally:
            relay.close()
        assert catcher.count() == 53
    assert sorted(ledger.emailed_ids()) == sorted([f"inline-{n}" for n in range(3)] + [f"child-{n}" for n in range(50)])
    ledger.close()
