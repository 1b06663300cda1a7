import json

import pytest

from orderlab.events import (
    ConfirmedOrder, DeclinedOrder, EventError, LineItem, Order, decode_confirmed, decode_declined, decode_order,
    encode_confirmed, encode_declined, encode_order,
)


def make_order(**changes):
    items = changes.pop("items", [LineItem("KB-001", "Keyboard", 2, 8999), LineItem("MS-002", "Mouse", 1, 2499)])
    fields = dict(order_id="o-1", customer_id="c-1", customer_email="ada@example.com", items=items, currency="EUR", created_at=1_700_000_000.0)
    fields.update(changes)
    return Order.create(**fields)


def test_total_is_the_sum_of_items_in_cents():
    assert make_order().total_cents == 2 * 8999 + 2499
    assert make_order().item_count == 3


@pytest.mark.parametrize("encode, decode, record", [
    (encode_order, decode_order, make_order()),
    (encode_confirmed, decode_confirmed, ConfirmedOrder(make_order(), "pay_1", 1_700_000_001.5)),
    (encode_declined, decode_declined, DeclinedOrder(make_order(), "card_expired", 1_700_000_002.0)),
])
def test_round_trip(encode, decode, record):
    assert decode(encode(record)) == record


def test_wrong_total_is_rejected_with_the_numbers():
    payload = json.loads(encode_order(make_order()))
    payload["total_cents"] += 1
    with pytest.raises(EventError, match="does not match its items"):
        decode_order(json.dumps(payload).encode())


@pytest.mark.parametrize("change, reason", [
    ({"currency": "XYZ"}, "unknown currency"),
    ({"customer_email": ""}, "customer_email is missing"),
    ({"customer_email": "someone@gmail.com"}, "reserved demo domain"),
    ({"items": []}, "has no items"),
    ({"items": [LineItem("KB-001", "Keyboard", -1, 8999)]}, "quantity of KB-001"),
    ({"items": [LineItem("KB-001", "Keyboard", 1, 0)]}, "price of KB-001"),
])
def test_invalid_orders_raise_one_error_type_with_the_reason(change, reason):
    with pytest.raises(EventError, match=reason):
        make_order(**change)


@pytest.mark.parametrize("raw, reason", [
    (b"not json at all", "not JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"order_id": "x"}', "'items' is missing"),
    (None, "no value"),
    (b"\xff\xfe", "not JSON"),
])
def test_undecodable_records(raw, reason):
    with pytest.raises(EventError, match=reason):
        decode_order(raw)


def test_boolean_is_not_a_quantity():
    payload = json.loads(encode_order(make_order()))
    payload["items"][0]["quantity"] = True
    with pytest.raises(EventError, match="wrong type"):
        decode_order(json.dumps(payload).encode())
