"""Lesson 03's exercises: following one order, its confirmation's partition and the time to its e-mail."""

from __future__ import annotations

from typing import Any, Iterable

from ..mail.caught import CaughtMail
from ..peek import partition_for_key
from . import NotYet, exercise


def _whole_number(answer: Any, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    return answer


@exercise(
    "03.confirmed_partition",
    hint="trace the order with trace(lab, order_id) and read the 'partition' column of its 'confirmed' row",
    facts={"order_id": "ord-0002", "partitions": 6},
    wrong=(partition_for_key("ord-0002", 6) + 1) % 6,
    solution=lambda order_id, partitions: partition_for_key(order_id, partitions),
)
def confirmed_partition(answer: Any, *, order_id: str, partitions: int) -> str:
    """``partitions``: how many partitions order_confirmed has (the broker says); the key decides which one."""
    partition = _whole_number(answer, "the partition")
    if not 0 <= partition < partitions:
        raise NotYet(f"order_confirmed has partitions 0 to {partitions - 1}; {partition} is not one of them")
    expected = partition_for_key(order_id, partitions)
    if partition != expected:
        raise NotYet(f"partition {partition} is not where {order_id}'s confirmation is: read the row whose step is "
                     "'confirmed' (not the offset column, not order_details' row)")
    return (f"{order_id}'s confirmation is on partition {expected}: the partition its key hashes to, so every record "
            "of one order lands on the same partition of a topic, read in order by one consumer")


def _mail_of(mails: Iterable[Any], order_id: str) -> Any:
    return next((mail for mail in mails if mail.order_id == order_id and mail.latency_s is not None), None)


_T0 = 1_800_000_000.0
_MAILS = [CaughtMail("ord-0001", "ada@example.com", "Your order ord-0001 is confirmed", "", _T0 + 0.250, _T0)]


@exercise(
    "03.emailed_after",
    hint="trace the order with trace(lab, order_id) and read the 'ms after placed' of the 'e-mailed' hop in .hops()",
    facts={"mails": _MAILS, "order_id": "ord-0001", "paid_at": _T0 + 0.180},
    wrong=70.0,
    solution=lambda mails, order_id, paid_at: round(_mail_of(mails, order_id).latency_s * 1000.0, 1),
)
def emailed_after(answer: Any, *, mails: Iterable[Any], order_id: str, paid_at: float) -> str:
    """``mails``: what the catcher received (each knows when its order was created); ``paid_at``: the ledger's
    payment time. The journey is not asked: the catcher's own clock answers."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"give a number of milliseconds, not a {type(answer).__name__}")
    mail = _mail_of(mails, order_id)
    if mail is None:
        raise NotYet(f"the catcher has no e-mail for {order_id} yet: place the three orders first")
    expected_ms = mail.latency_s * 1000.0
    if abs(answer - expected_ms) <= 1.0:
        return ("that long from the order to the inbox: through order_details, the payment, order_confirmed "
                "and the SMTP server")
    if abs(answer * 1000.0 - expected_ms) <= 1.0:
        raise NotYet("that is in seconds: the question asks for milliseconds")
    if abs(answer - (mail.received_at - paid_at) * 1000.0) <= 1.0:
        raise NotYet("that is the time from the payment to the e-mail (the last hop); the question asks from the "
                     "moment the order was placed")
    raise NotYet(f"{answer} ms is not it: the e-mailed hop's 'ms after placed'")
