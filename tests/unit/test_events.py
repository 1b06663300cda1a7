import json

import pytest

from orderlab.events import (
    ConfirmedOrder, DeclinedOrder, EventError, LineItem, Order, currency_problem, decode_confirmed, decode_declined,
    decode_order, email_problem, encode_confirmed, encode_declined, encode_order, quantity_problem,
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


# -- every problem at once ----------------------------------------------------------------

def test_every_problem_of_an_order_is_in_one_error():
    payload = json.loads(encode_order(make_order()))
    payload.update(order_id="1234", customer_email="x", currency="XYZ", total_cents=5)
    with pytest.raises(EventError) as caught:
        decode_order(json.dumps(payload).encode())
    assert str(caught.value) == (
        "order 1234: customer_email 'x' is not an e-mail address; unknown currency 'XYZ' (known: EUR, USD, GBP); "
        f"total_cents 5 does not match its items ({2 * 8999 + 2499})"
    )


def test_unreadable_fields_and_broken_rules_are_listed_together():
    payload = {
        "order_id": "o-9", "customer_email": "ada@gmail.com", "currency": "EUR", "created_at": "yesterday",
        "items": [{"sku": "KB-001", "name": "Keyboard", "quantity": True, "unit_price_cents": 8999}, "MS-002",
                  {"sku": "MN-003", "name": "Monitor", "quantity": 0, "unit_price_cents": -1}],
        "total_cents": 1,
    }
    with pytest.raises(EventError) as caught:
        decode_order(json.dumps(payload).encode())
    problems = str(caught.value).removeprefix("order o-9: ").split("; ")
    assert problems == [
        "field 'customer_id' is missing",
        "item 1: field 'quantity' has the wrong type (bool)",
        "item 2 is not a JSON object (str)",
        "field 'created_at' has the wrong type (str)",
        "customer_email must be at a reserved demo domain (example.com, example.org, example.net), got 'gmail.com'",
        "quantity of MN-003 must be 1..100, got 0",
        "price of MN-003 must be a positive number of cents",
    ]  # no total check: two items could not be read


def test_an_order_built_in_python_lists_every_problem_too():
    with pytest.raises(EventError) as caught:
        make_order(customer_id="", currency="XDG", items=[LineItem("KB-001", "Keyboard", 101, 8999),
                                                          LineItem("MS-002", "Mouse", 1.5, 0)])
    assert str(caught.value) == (
        "order o-1: customer_id is missing; unknown currency 'XDG' (known: EUR, USD, GBP); "
        "quantity of KB-001 must be 1..100, got 101; quantity of MS-002 is not a whole number; "
        "price of MS-002 must be a positive number of cents"
    )


def test_a_record_without_an_order_id_says_order():
    with pytest.raises(EventError) as caught:
        decode_order(b'{"items": []}')
    assert str(caught.value).startswith("order: field 'order_id' is missing; field 'customer_id' is missing; ")
    assert str(caught.value).endswith("; customer_email is missing; has no items")


@pytest.mark.parametrize("decode, fields, own", [
    (decode_confirmed, {"confirmed_at": "soon"}, "confirmed order: field 'payment_id' is missing; field 'confirmed_at' has the wrong type (str)"),
    (decode_declined, {"reason": 7}, "declined order: field 'reason' has the wrong type (int); field 'declined_at' is missing"),
])
def test_outcome_records_list_their_own_problems_then_their_orders(decode, fields, own):
    order = json.loads(encode_order(make_order()))
    order["currency"] = "XYZ"
    with pytest.raises(EventError) as caught:
        decode(json.dumps({"order": order, **fields}).encode())
    assert str(caught.value) == f"{own}; order o-1: unknown currency 'XYZ' (known: EUR, USD, GBP)"


@pytest.mark.parametrize("change, message", [
    ({"currency": "XYZ"}, "order o-1: unknown currency 'XYZ' (known: EUR, USD, GBP)"),
    ({"customer_email": "someone@gmail.com"},
     "order o-1: customer_email must be at a reserved demo domain (example.com, example.org, example.net), got 'gmail.com'"),
    ({"items": [LineItem("KB-001", "Keyboard", 0, 8999)]}, "order o-1: quantity of KB-001 must be 1..100, got 0"),
])
def test_one_problem_keeps_its_words(change, message):
    with pytest.raises(EventError) as caught:
        make_order(**change)
    assert str(caught.value) == message


def test_problem_helpers_for_a_form_or_a_command():
    assert email_problem("ada@example.com") is None and email_problem("ada@EXAMPLE.org") is None
    assert email_problem("") == "customer_email is missing"
    assert email_problem("@example.com") == "customer_email '@example.com' is not an e-mail address"
    assert currency_problem("GBP") is None and currency_problem("gbp") == "unknown currency 'gbp' (known: EUR, USD, GBP)"
    assert quantity_problem("KB-001", 3) is None
    assert quantity_problem("KB-001", True) == "quantity of KB-001 is not a whole number"


# -- the fast way and the standard way agree ------------------------------------------------

def _standard(decode, raw):
    """What the standard library's way decides for ``raw``: the record, or the error's words."""
    from orderlab import events

    build = {decode_order: events.order_from_dict, decode_confirmed: events._confirmed_from_dict,
             decode_declined: events._declined_from_dict}[decode]
    try:
        return build(events._loads(raw))
    except EventError as exc:
        return str(exc)


def _decided(decode, raw):
    try:
        return decode(raw)
    except EventError as exc:
        return str(exc)


def _order_json(**changes):
    payload = json.loads(encode_order(make_order()))
    payload.update(changes)
    return payload


ODD_ORDERS = [
    _order_json(created_at=1_700_000_000),                     # an int where a float is declared: read as a float
    _order_json(created_at=True), _order_json(created_at="soon"), _order_json(created_at=-0.0),
    _order_json(customer_email=None), _order_json(items={"sku": "KB-001"}), _order_json(items=[], total_cents=0),
    _order_json(items=[{"sku": "KB-001", "name": "Keyboard", "quantity": 2.0, "unit_price_cents": 8999}], total_cents=17998),
    _order_json(items=[{"sku": "KB-001", "name": "Keyboard", "quantity": True, "unit_price_cents": 8999}], total_cents=8999),
    _order_json(items=[{"sku": "KB-001", "name": "Keyboard", "quantity": 1, "unit_price_cents": 10**30}], total_cents=10**30),
    _order_json(items=[{"sku": "KB-001", "name": "Keyboard", "quantity": 1, "unit_price_cents": 5, "colour": None}], total_cents=5),
    _order_json(extra={"ignored": [1, 2]}), _order_json(customer_id="zoë ☃\n"), _order_json(total_cents=1),
    _order_json(order_id=7), {"order_id": "o-1"}, [1, 2], "text",
]
ODD_RAW = [
    b'{"order_id": "o-\\ud800", "customer_id": "c", "customer_email": "a@example.com", "items": '
    b'[{"sku": "K", "name": "n", "quantity": 1, "unit_price_cents": 100}], "total_cents": 100, "currency": "EUR", "created_at": 1.5}',
    json.dumps(_order_json()).replace('"created_at": 1700000000.0', '"created_at": NaN').encode(),
    json.dumps(_order_json()).replace('"created_at": 1700000000.0', '"created_at": 1e400').encode(),
    json.dumps(_order_json()).replace('"order_id": "o-1"', '"order_id": "o-1", "order_id": "o-2"').encode(),
    json.dumps(_order_json()).encode("utf-16"), b"  " + json.dumps(_order_json()).encode() + b"\n", b"{", b"",
]


@pytest.mark.parametrize("raw", [json.dumps(payload).encode() for payload in ODD_ORDERS] + ODD_RAW)
def test_an_order_decodes_as_the_standard_library_decides(raw):
    assert _decided(decode_order, raw) == _standard(decode_order, raw)


@pytest.mark.parametrize("decode, fields", [
    (decode_confirmed, {"payment_id": "pay_1", "confirmed_at": 2}), (decode_confirmed, {"payment_id": 1, "confirmed_at": 2.5}),
    (decode_confirmed, {"payment_id": "pay_1"}), (decode_declined, {"reason": "card_expired", "declined_at": 2.5}),
    (decode_declined, {"reason": "card_expired", "declined_at": False}),
])
@pytest.mark.parametrize("order", [_order_json(), _order_json(currency="XYZ"), _order_json(created_at=3)])
def test_an_outcome_decodes_as_the_standard_library_decides(decode, fields, order):
    raw = json.dumps({"order": order, **fields}).encode()
    assert _decided(decode, raw) == _standard(decode, raw)


def test_generated_records_encode_as_their_dicts_would_and_decode_to_equal_records():
    from orderlab import events
    from orderlab.generator import OrderFactory

    factory = OrderFactory(seed=5, customers=20)
    for order in (factory.make() for _ in range(200)):
        outcomes = [(encode_confirmed, decode_confirmed, ConfirmedOrder(order, "pay_1", order.created_at + 0.5),
                     events._confirmed_dict), (encode_declined, decode_declined,
                     DeclinedOrder(order, "card_expired", order.created_at + 0.5), events._declined_dict),
                    (encode_order, decode_order, order, events.order_dict)]
        for encode, decode, record, as_dict in outcomes:
            raw = encode(record)
            assert raw == json.dumps(as_dict(record), separators=(",", ":"), ensure_ascii=False).encode()
            assert decode(raw) == record == _standard(decode, raw)


def test_an_integer_beyond_64_bits_is_written_and_read_exactly():
    order = make_order(items=[LineItem("KB-001", "Keyboard", 1, 10**30)])
    record = ConfirmedOrder(order, "pay_1", 2.5)
    assert decode_order(encode_order(order)) == order and decode_confirmed(encode_confirmed(record)) == record
    assert b'"unit_price_cents":1000000000000000000000000000000' in encode_confirmed(record)


# -- a value read twice (two roles on one topic, in one process) is decoded once ------------

def test_a_refused_value_read_again_gives_the_same_error():
    bad = json.dumps(_order_json(currency="XYZ")).encode()
    errors = []
    for _ in range(2):
        with pytest.raises(EventError) as caught:
            decode_order(bad)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] == _standard(decode_order, bad)
    with pytest.raises(EventError, match="record has no value"):
        decode_order(None)


def _counting_shared(limit: int = 100):
    from orderlab import events

    calls: list[bytes] = []

    def decode(raw):
        calls.append(raw)
        return events.decode_order(raw)

    return events.SharedDecodes(decode, limit=limit), calls


def test_with_two_groups_reading_each_value_is_decoded_once_and_kept_until_the_other_took_it():
    shared, calls = _counting_shared()
    shared.add_reader("transactions")
    shared.add_reader("analytics")
    values = [encode_order(make_order(order_id=f"o-{n}")) for n in range(3)]
    first = [shared(raw) for raw in values]  # one group reads ahead...
    assert shared.waiting == 3
    again = [shared(bytes(bytearray(raw))) for raw in values]  # ...the other takes them (equal bytes of another fetch)
    assert all(a is b for a, b in zip(first, again)) and calls == values
    assert shared.waiting == 0, "taken by every group: nothing kept"
    assert shared(values[0]) == first[0] and len(calls) == 4  # a third read (a redelivery) decodes again
    assert shared(bytearray(values[1])) == first[1]  # not a key: decoded as before


def test_nothing_is_kept_for_one_group_and_the_oldest_goes_beyond_the_limit():
    shared, calls = _counting_shared(limit=2)
    shared.add_reader("transactions")
    shared.add_reader("transactions")  # two workers of one group read different partitions: still one group
    values = [encode_order(make_order(order_id=f"o-{n}")) for n in range(3)]
    for raw in values:
        shared(raw)
    assert shared.waiting == 0 and len(calls) == 3
    shared.add_reader("analytics")
    for raw in values:
        shared(raw)
    assert shared.waiting == 2  # the oldest was dropped
    shared(values[0])
    assert len(calls) == 7, "the dropped one is decoded again"
    shared.remove_reader("analytics")
    assert shared.waiting == 0, "the other group stopped: nothing waits for it"


def test_the_lab_record_types_share_their_decoders():
    from orderlab import events

    assert events.ORDER.shared is events._decode_order and events.CONFIRMED.shared is events._decode_confirmed
    raw = encode_order(make_order(order_id="o-shared"))
    events.ORDER.add_reader("g1")
    events.ORDER.add_reader("g2")
    try:
        assert decode_order(raw) is decode_order(raw)
    finally:
        events.ORDER.remove_reader("g1")
        events.ORDER.remove_reader("g2")
    assert events._decode_order.waiting == 0


def test_without_msgspec_and_orjson_the_standard_library_gives_the_same_bytes_records_and_errors(monkeypatch):
    import importlib.util
    import sys

    from orderlab import events

    monkeypatch.setitem(sys.modules, "msgspec", None)  # import msgspec raises ImportError
    monkeypatch.setitem(sys.modules, "orjson", None)
    spec = importlib.util.spec_from_file_location("orderlab_events_without_extras", events.__file__)
    plain = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, plain)  # dataclasses look their module up there
    spec.loader.exec_module(plain)
    assert plain.msgspec is None and plain.orjson is None

    def outcome(module, raw):
        try:
            return module.order_dict(module.decode_order(raw))
        except module.EventError as exc:
            return str(exc)

    raws = [json.dumps(payload).encode() for payload in ODD_ORDERS] + ODD_RAW + [encode_order(make_order())]
    for raw in raws:
        assert outcome(plain, raw) == outcome(events, raw)
    order = make_order(items=[LineItem("KB-001", "Keyboard", 1, 10**30)])
    for record in (order, make_order()):
        plain_order = plain.decode_order(encode_order(record))
        assert plain.encode_order(plain_order) == encode_order(record)
        assert plain.encode_confirmed(plain.ConfirmedOrder(plain_order, "pay_1", 2.5)) == encode_confirmed(ConfirmedOrder(record, "pay_1", 2.5))


def test_with_three_groups_a_record_waits_for_both_others():
    shared, calls = _counting_shared()
    for group in ("a", "b", "c"):
        shared.add_reader(group)
    raw = encode_order(make_order(order_id="o-three"))
    first = shared(raw)
    assert shared(raw) is first and shared.waiting == 1
    assert shared(raw) is first and shared.waiting == 0 and calls == [raw]
