"""Following one order through a running Lab (orderlab.trace): its records on the partition its key hashes
to, its payment and its e-mail, a declined order, and a record only the dead-letter topics kept.
The journey built from given records is ``tests/unit/test_trace.py``."""

from __future__ import annotations

import pytest

from orderlab.lab import Lab
from orderlab.lessons import drain, inject_records
from orderlab.peek import partition_for_key, read_records
from orderlab.settings import Settings
from orderlab.trace import trace
from orderlab.ui import order_payload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_an_order_is_traced_from_the_order_source_to_the_inbox(settings: Settings) -> None:
    with Lab(settings, rate=0, workers=1, decline_probability=0.0) as lab:
        lab.generate(40, rate=200)  # other orders on the same partitions: the trace picks this one's out
        assert lab.place(order_payload(["MN-003", "DK-006"], 1, "alan@example.com", order_id="ord-0003")).accepted
        drain(lab, timeout_s=60)  # paid (decline probability 0) before the next one is declined
        lab.set_decline_probability(1.0)
        assert lab.place(order_payload(["KB-001"], 1, "ada@example.com", order_id="ord-0004")).accepted
        inject_records(lab, [("poison-7", b"{not json")])
        drain(lab, timeout_s=60)
        lab.wait_until(lambda s: s.dead_lettered >= 2, 30)

        journey = trace(lab, "ord-0003")
        declined = trace(lab, "ord-0004")
        poison = trace(lab, "poison-7")
        bare = trace(settings, "ord-0003")  # no ledger, no catcher: the records alone

    partition = partition_for_key("ord-0003", settings.order_details_partitions)
    for topic in (settings.order_details_topic, settings.order_confirmed_topic):
        (record,) = journey.records_on(topic)
        on_topic = read_records(settings, topic).set_index("key")
        assert (record.partition, record.offset) == (partition, on_topic.loc["ord-0003", "offset"])
    assert journey.payment is not None and journey.payment.approved and journey.charges == 1
    assert journey.ledger_email is not None and [m.message_id for m in journey.caught] == [journey.ledger_email.message_id]
    assert journey.message_id.startswith("<") and "ord-0003" in journey.message_id
    assert journey.placed_at <= journey.paid_at <= journey.emailed_at
    table = journey.table()
    assert table.step.tolist() == ["order created", "order placed", "payment decided", "confirmed", "e-mail received",
                                   "e-mail recorded"]
    assert (table["ms after placed"].diff().dropna() > -1.0).all()  # in time order, to the ms a record's timestamp has

    assert [r.topic for r in declined.records] == [settings.order_details_topic, settings.order_declined_topic]
    assert not declined.payment.approved and declined.charges == 0 and declined.caught == () and declined.emailed_at is None

    letters = poison.table().query("step == 'dead-lettered'")
    assert sorted(d.split(":")[0] for d in letters.detail) == ["analytics", "transactions"]
    assert set(letters["where"]) == {"order_details.dlq"} and poison.payment is None

    assert [r.offset for r in bare.records] == [r.offset for r in journey.records]
    assert bare.payment is None and bare.caught == () and bare.emailed_at is None
