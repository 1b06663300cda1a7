"""One order's journey built from given records, ledger rows and caught mail (no broker): the table in
time order, the hops placed → paid → e-mailed, dead letters, and the timeline chart.
Tracing a real order through a running Lab is ``tests/integration/test_trace.py``."""

from __future__ import annotations

import pandas as pd

from orderlab.dlq import dead_letter_headers
from orderlab.events import ConfirmedOrder, LineItem, Order, PaymentResult, encode_confirmed, encode_order
from orderlab.trace import CaughtEmail, LedgerEmail, TracedRecord, build_journey
from orderlab.ui.journey import journey_figure

SUFFIX = "-lesson03-1a2b3c4d"
T0 = 1_800_000_000.0
ORDER = Order.create("ord-0003", "alan", "alan@example.com", [LineItem("MN-003", "27-inch monitor", 1, 22_900)],
                     created_at=T0)
MESSAGE_ID = "<1.2.3.ord-0003@shop.example.com>"


def records() -> list[TracedRecord]:
    confirmed = encode_confirmed(ConfirmedOrder(ORDER, "pay_0123456789abcdef", T0 + 0.040))
    return [  # out of order on purpose: the journey sorts by time
        TracedRecord(f"order_confirmed{SUFFIX}", 4, 12, T0 + 0.045, confirmed),
        TracedRecord(f"order_details{SUFFIX}", 4, 17, T0 + 0.005, encode_order(ORDER)),
    ]


def payment(approved: bool = True) -> PaymentResult:
    return PaymentResult("ord-0003", approved, "approved" if approved else "card declined",
                         "pay_0123456789abcdef" if approved else "", T0 + 0.030)


def test_the_journey_lists_every_trace_of_the_order_in_time_order() -> None:
    journey = build_journey("ord-0003", records(), payment=payment(), charges=1,
                            ledger_email=LedgerEmail(MESSAGE_ID, T0 + 0.120),
                            caught=[CaughtEmail(MESSAGE_ID, "alan@example.com", T0 + 0.110)], topic_suffix=SUFFIX)
    table = journey.table()
    assert list(table.step) == ["order created", "order placed", "payment decided", "confirmed", "e-mail received",
                                "e-mail recorded"]
    assert list(table["where"]) == ["order source", "order_details", "ledger: payments", "order_confirmed",
                                    "SMTP catcher", "ledger: emails"]
    assert table.loc[1, ["partition", "offset"]].tolist() == [4, 17] and pd.isna(table.loc[2, "partition"])
    assert table["ms after placed"].tolist() == [0.0, 5.0, 30.0, 45.0, 110.0, 120.0]
    assert "charged 1x" in table.loc[2, "detail"] and "229.00 EUR" in table.loc[1, "detail"]
    assert journey.message_id == MESSAGE_ID and journey.caught[0].message_id == MESSAGE_ID
    assert [r.offset for r in journey.records_on("order_confirmed")] == [12]
    hops = journey.hops()
    assert hops["ms after placed"].tolist() == [0.0, 30.0, 110.0]
    assert hops["ms after the hop before"].tolist()[1:] == [30.0, 80.0]


def test_a_declined_order_has_no_e_mail_hop() -> None:
    journey = build_journey("ord-0003", records()[1:], payment=payment(approved=False), topic_suffix=SUFFIX)
    hops = journey.hops()
    assert pd.isna(hops.loc["e-mailed", "ms after placed"]) and journey.emailed_at is None
    assert "declined: card declined" in journey.table().detail.tolist()
    assert journey.message_id is None


def test_a_record_no_role_can_read_shows_with_its_dead_letters() -> None:
    bad = TracedRecord(f"order_details{SUFFIX}", 1, 3, T0 + 1.0, b"{not json")
    letters = [
        TracedRecord(f"order_details{SUFFIX}.dlq", 0, n, T0 + 1.2 + n / 10,
                     b"{not json", tuple(dead_letter_headers("not JSON: Expecting property name", role, bad.topic, 1, 3)))
        for n, role in enumerate(("transactions", "analytics"))
    ]
    journey = build_journey("poison-1", [*letters, bad], topic_suffix=SUFFIX)
    table = journey.table()
    assert list(table.step) == ["order placed", "dead-lettered", "dead-lettered"]
    assert table.loc[0, "detail"].startswith("unreadable: ") and journey.placed_at == T0 + 1.0  # no event time: the record's
    assert table.loc[1, "where"] == "order_details.dlq"
    assert [d.split(":")[0] for d in table.detail[1:]] == ["transactions", "analytics"]
    assert journey.hops()["ms after placed"].isna().tolist() == [False, True, True]


def test_the_timeline_has_a_lane_per_place_and_says_when_nothing_was_found() -> None:
    journey = build_journey("ord-0003", records(), payment=payment(), charges=1,
                            caught=[CaughtEmail(MESSAGE_ID, "alan@example.com", T0 + 0.110)], topic_suffix=SUFFIX)
    axes = journey_figure(journey).axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "order source", "order_details", "ledger: payments", "order_confirmed", "SMTP catcher"]
    assert axes.get_xlabel() == "ms after the order was placed"
    empty = journey_figure(build_journey("nobody", [])).axes[0]
    assert any(text.get_text() == "nothing found for this order" for text in empty.texts)
