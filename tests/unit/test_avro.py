"""Lesson 11's Avro library without a broker: the codec, the compatibility walk
(held against fastavro's own resolution on sample records), the registry, the
order's schemas, and decoding a record by the schema id in its header."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import fakes
from orderlab.avro import (
    ORDER_V1, ORDER_V2, ORDER_V3, ORDER_V3_ALIASED, SCHEMA_ID_HEADER, AvroError, IncompatibleSchema, SchemaRegistry,
    SchemaRegistryError, UndecodableRecord, UnknownSchemaId, can_read, changes_table, check_compatibility, decode,
    decode_record, encode, field_default, field_layout, hex_dump, order_from_record, order_record, resolution_error,
    schema_changes, schema_id_header, send_order, why_not,
)
from orderlab.avro.orders import renamed_field, retyped_field, with_field, without_field
from orderlab.avro.wire import readings_table, ReadResult, schema_id_of
from orderlab.events import LineItem, Order, encode_order
from orderlab.generator import OrderFactory


def record(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def f(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


ORDER = Order.create("o-1", "cust-00001", "ann.1@example.com",
                     [LineItem("KB-001", "Keyboard", 2, 4_999), LineItem("MS-002", "Mouse", 1, 1_999)],
                     created_at=1_700_000_000.5)


# -- codec ----------------------------------------------------------------------------------------------------------

def test_an_order_round_trips_and_takes_fewer_bytes_than_its_json() -> None:
    data = encode(order_record(ORDER), ORDER_V1)
    assert order_from_record(decode(data, ORDER_V1)) == ORDER
    assert len(data) < len(encode_order(ORDER)) / 2  # no field names, varint numbers


def test_avro_bytes_hold_values_only_in_field_order() -> None:
    data = encode({"a": 1, "b": "hi"}, record(f("a", "long"), f("b", "string")))
    assert data == bytes([2, 4]) + b"hi"  # zig-zag 1 = 2; a string is its length (zig-zag 2 = 4), then the bytes


def test_bytes_left_over_or_missing_are_refused_in_one_line() -> None:
    schema = record(f("a", "long"))
    with pytest.raises(AvroError, match="1 bytes left over"):
        decode(encode({"a": 1}, schema) + b"\x00", schema)
    with pytest.raises(AvroError, match="end before"):
        decode(encode(order_record(ORDER), ORDER_V1)[:-3], ORDER_V1)
    with pytest.raises(AvroError) as json_bytes:
        decode(encode_order(ORDER), ORDER_V1)
    assert "\n" not in str(json_bytes.value)


def test_a_datum_that_does_not_fit_and_a_schema_that_does_not_parse_are_avro_errors() -> None:
    with pytest.raises(AvroError, match="does not fit"):
        encode({"a": "not a number"}, record(f("a", "long")))
    with pytest.raises(AvroError, match="not a valid Avro schema"):
        encode({}, {"type": "record", "name": "R", "fields": [{"name": "a", "type": "no.such.Type"}]})
    with pytest.raises(AvroError, match="not JSON"):
        encode({}, "{not json")
    assert decode(encode({"a": 3}, json.dumps(record(f("a", "int")))), record(f("a", "int"))) == {"a": 3}


def test_the_hex_dump_shows_offsets_bytes_and_printable_text() -> None:
    lines = hex_dump(b"ab\x00" * 6).splitlines()
    assert lines[0] == "0000  61 62 00 61 62 00 61 62 00 61 62 00 61 62 00 61  |ab.ab.ab.ab.ab.a|"
    assert lines[1].startswith("0010  62 00 ") and lines[1].endswith("|b.|")


def test_the_field_layout_covers_every_byte_in_field_order() -> None:
    datum = order_record(ORDER)
    layout = field_layout(datum, ORDER_V1)
    data = encode(datum, ORDER_V1)
    assert list(layout.index) == [field["name"] for field in ORDER_V1["fields"]]
    assert layout["bytes"].sum() == len(data)
    assert list(layout["offset"]) == [0, *layout["bytes"].cumsum()[:-1]]
    assert layout.loc["created_at", "bytes"] == 8 and layout.loc["currency", "hex"] == "06 45 55 52"  # 3 letters: "EUR"


# -- compatibility: one rule at a time ----------------------------------------------------------------------------------

BASE = record(f("id", "string"), f("count", "int"), name="Thing")


@pytest.mark.parametrize(("new", "backward", "forward"), [
    pytest.param(with_field(BASE, f("note", "string", default="")), True, True, id="added-with-default"),
    pytest.param(with_field(BASE, f("note", "string")), False, True, id="added-without-default"),
    pytest.param(without_field(BASE, "count"), True, False, id="removed"),
    pytest.param(renamed_field(BASE, "count", "total"), False, False, id="renamed-without-alias"),
    pytest.param(renamed_field(BASE, "count", "total", alias=True), True, False, id="renamed-with-alias"),
    pytest.param(retyped_field(BASE, "count", "long"), True, False, id="int-to-long"),
    pytest.param(retyped_field(BASE, "count", "double"), True, False, id="int-to-double"),
    pytest.param(retyped_field(BASE, "count", "string"), False, False, id="int-to-string"),
    pytest.param(retyped_field(BASE, "id", "bytes"), True, True, id="string-to-bytes"),
    pytest.param(retyped_field(BASE, "count", ["null", "int"]), True, False, id="made-nullable"),
    pytest.param(BASE, True, True, id="unchanged"),
])
def test_each_change_is_judged_by_the_resolution_rules(new: dict, backward: bool, forward: bool) -> None:
    assert bool(check_compatibility(new, BASE, "BACKWARD")) is backward
    assert bool(check_compatibility(new, BASE, "FORWARD")) is forward
    assert bool(check_compatibility(new, BASE, "FULL")) is (backward and forward)
    assert check_compatibility(new, BASE, "NONE")


def test_removing_a_field_that_had_a_default_keeps_old_readers_working() -> None:
    old = with_field(BASE, f("note", "string", default="-"))
    assert check_compatibility(without_field(old, "note"), old, "FULL")


def test_the_reason_names_the_field_by_its_path_and_says_what_to_do() -> None:
    verdict = can_read(ORDER_V2, ORDER_V3)
    assert not verdict and len(verdict.problems) == 1
    assert verdict.reason == ("Order.email: the writer has no field 'email' and the reader gives it no default (the writer "
                              "has 'customer_email': if that is this field renamed, the reader's field needs "
                              "'customer_email' among its aliases)")
    narrowed = can_read(retyped_field(ORDER_V1, "items.quantity", "long"), ORDER_V1)
    assert narrowed.reason == ("Order.items[].quantity: the writer's long cannot be read as int "
                               "(Avro widens int to long, float or double, never back)")
    assert can_read(ORDER_V1, ORDER_V2).reason == "compatible"


def test_several_problems_give_one_line_that_counts_the_rest() -> None:
    new = retyped_field(renamed_field(BASE, "id", "key"), "count", "string")
    verdict = check_compatibility(new, BASE, "FULL")
    assert len(verdict.problems) == 4
    assert verdict.reason.startswith("not backward compatible (a new reader, an old record): Thing.key")
    assert verdict.reason.endswith("(and 3 more problems)") and "\n" not in verdict.reason


def test_unions_every_branch_the_writer_may_have_written_must_be_readable() -> None:
    nullable = record(f("x", ["null", "string"]))
    plain_string = record(f("x", "string"))
    assert can_read(plain_string, nullable)
    refused = can_read(nullable, plain_string)
    assert refused.reason == "R.x: the writer's null cannot be read as string"
    assert can_read(record(f("x", "int")), record(f("x", ["null", "long"])))  # the branch found by promotion
    assert can_read(record(f("x", "boolean")), record(f("x", ["null", "string"]))).reason == (
        "R.x: the writer's boolean is no branch of the reader's union [null, string]")


def test_enums_need_every_written_symbol_or_a_default() -> None:
    def colour(*symbols: str, **extra: Any) -> dict:
        return record(f("c", {"type": "enum", "name": "Colour", "symbols": list(symbols), **extra}))
    assert can_read(colour("RED"), colour("RED", "BLUE"))
    assert can_read(colour("RED", "BLUE"), colour("RED")).reason == (
        "R.c: the reader's enum lacks the writer's symbol BLUE and has no default symbol")
    assert can_read(colour("RED", "BLUE"), colour("RED", "OTHER", default="OTHER"))


def test_arrays_maps_fixed_and_names() -> None:
    assert can_read(record(f("m", {"type": "map", "values": "int"})), record(f("m", {"type": "map", "values": "long"})))
    assert not can_read(record(f("a", {"type": "array", "items": "long"})), record(f("a", {"type": "array", "items": "int"})))
    sized = lambda n: record(f("h", {"type": "fixed", "name": "Hash", "size": n}))  # noqa: E731
    assert can_read(sized(16), sized(32)).reason == "R.h: the writer's fixed is 16 bytes, the reader's 32"
    assert can_read(record(f("a", "int"), name="Old"), record(f("a", "int"), name="New")).reason.startswith(
        "New: the writer's record Old is not the reader's New")
    assert can_read(record(f("a", "int"), name="Old"), record(f("a", "int"), name="New", aliases=["Old"]))
    assert not can_read(record(f("a", "int")), record(f("a", {"type": "array", "items": "int"})))


def test_a_recursive_schema_and_a_named_type_used_twice_are_walked_once() -> None:
    linked = record(f("value", "int"), f("next", ["null", "Node"]), name="Node")
    wider = record(f("value", "long"), f("next", ["null", "Node"]), name="Node")
    assert can_read(linked, wider) and not can_read(wider, linked)
    point = {"type": "record", "name": "Point", "fields": [f("x", "int")]}
    twice = record(f("a", point), f("b", "Point"))
    assert can_read(twice, copy.deepcopy(twice))
    wide_point = record(f("a", {**point, "fields": [f("x", "long")]}), f("b", "Point"))
    assert can_read(twice, wide_point) and not can_read(wide_point, twice)


def test_a_mode_that_does_not_exist_and_a_schema_that_does_not_parse_say_so() -> None:
    with pytest.raises(ValueError, match="BACKWARD, FORWARD, FULL, NONE"):
        check_compatibility(BASE, BASE, "SIDEWAYS")
    with pytest.raises(AvroError, match="not a valid Avro schema"):
        can_read(BASE, {"type": "record", "name": "R", "fields": [{"name": "a"}]})


# -- the walk agrees with fastavro reading real bytes -----------------------------------------------------------------

def _sample() -> dict[str, Any]:
    return order_record(ORDER, coupon=None, channel="web", email=ORDER.customer_email)


@pytest.mark.parametrize("name", sorted(schema_changes()))
def test_the_walk_and_fastavro_agree_on_every_change_of_the_lesson(name: str) -> None:
    changed = schema_changes()[name].schema
    assert bool(can_read(ORDER_V1, changed)) is (resolution_error(_sample(), ORDER_V1, changed) is None)
    assert bool(can_read(changed, ORDER_V1)) is (resolution_error(_sample(), changed, ORDER_V1) is None)


@pytest.mark.parametrize(("writer", "reader"), [
    (ORDER_V1, ORDER_V2), (ORDER_V2, ORDER_V1), (ORDER_V2, ORDER_V3), (ORDER_V3, ORDER_V2),
    (ORDER_V2, ORDER_V3_ALIASED), (ORDER_V3_ALIASED, ORDER_V2), (ORDER_V1, ORDER_V3_ALIASED),
])
def test_the_walk_and_fastavro_agree_on_the_order_versions(writer: dict, reader: dict) -> None:
    assert bool(can_read(writer, reader)) is (resolution_error(_sample(), writer, reader) is None)


def test_the_table_of_changes_hides_or_shows_the_verdicts_and_every_no_has_its_reason() -> None:
    changes = schema_changes()
    assert list(changes_table(changes).columns) == ["what it does"]
    judged = changes_table(changes, verdicts=True)
    assert set(judged.index[judged.backward]) == {"add_coupon", "drop_email", "widen_quantity"}
    assert set(judged.index[judged.forward]) == {"add_coupon", "add_channel_no_default", "narrow_total"}
    lines = why_not(changes)
    assert len(lines) == (~judged.backward).sum() + (~judged.forward).sum() == 6
    assert "narrow_total, backward: Order.total_cents: the writer's long cannot be read as int" in lines[-1]


# -- the order's versions -------------------------------------------------------------------------------------------------

def test_v1_and_v2_read_each_other_and_the_new_field_takes_its_default() -> None:
    old = encode(order_record(ORDER), ORDER_V1)
    new = encode(order_record(ORDER, channel="app"), ORDER_V2)
    assert decode(old, ORDER_V1, ORDER_V2)["channel"] == field_default(ORDER_V2, "channel") == "web"
    assert decode(new, ORDER_V2, ORDER_V2)["channel"] == "app"
    assert "channel" not in decode(new, ORDER_V2, ORDER_V1)
    assert order_from_record(decode(new, ORDER_V2, ORDER_V1)) == ORDER


def test_the_aliased_v3_reads_v2_records_into_its_renamed_field() -> None:
    datum = decode(encode(order_record(ORDER, channel="app"), ORDER_V2), ORDER_V2, ORDER_V3_ALIASED)
    assert datum["email"] == ORDER.customer_email and "customer_email" not in datum
    assert order_from_record(datum) == ORDER


def test_schema_edits_name_what_they_cannot_find() -> None:
    for edit in (lambda: without_field(ORDER_V1, "nope"), lambda: renamed_field(ORDER_V1, "nope", "x"),
                 lambda: retyped_field(ORDER_V1, "items.nope", "long"), lambda: field_default(ORDER_V1, "order_id")):
        with pytest.raises(KeyError):
            edit()
    assert ORDER_V1["fields"][-1]["name"] == "created_at"  # the edits copy; the original stays as it was


# -- the registry -------------------------------------------------------------------------------------------------------

def test_ids_are_global_versions_per_subject_and_a_known_schema_keeps_its_id() -> None:
    registry = SchemaRegistry("FULL")
    v1 = registry.register("orders-value", ORDER_V1)
    other = registry.register("other-value", BASE)
    v2 = registry.register("orders-value", ORDER_V2)
    assert (v1.id, other.id, v2.id) == (1, 2, 3) and (v1.version, other.version, v2.version) == (1, 1, 2)
    reordered = json.loads(json.dumps(ORDER_V2, sort_keys=True))
    assert registry.register("orders-value", reordered) == v2
    assert registry.register("orders-value", ORDER_V1) == v1
    assert registry.get(3) == v2 and registry.latest("orders-value") == v2
    table = registry.table()
    assert list(table["since the version before"]) == ["(first)", "(first)", "+channel"] and table.loc[3, "fields"] == 8
    loose = SchemaRegistry("NONE")
    loose.register("s", ORDER_V2)
    loose.register("s", ORDER_V3)
    assert loose.table().loc[2, "since the version before"] == "+email -customer_email"
    assert v2.label == "orders-value v2 (id 3)"


def test_an_incompatible_schema_is_refused_with_its_reason_and_gets_no_id() -> None:
    registry = SchemaRegistry("FULL")
    registry.register("s", ORDER_V1)
    registry.register("s", ORDER_V2)
    with pytest.raises(IncompatibleSchema) as refused:
        registry.register("s", ORDER_V3)
    assert refused.value.version == 2 and refused.value.mode == "FULL"
    assert str(refused.value).startswith("s: refused under FULL compatibility with version 2: not backward compatible")
    assert "Order.email" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(IncompatibleSchema, match="not forward compatible"):
        registry.register("s", ORDER_V3_ALIASED)  # FULL: the v2 readers could not read it
    assert [s.version for s in registry.versions("s")] == [1, 2]
    assert registry.register("t", BASE).id == 3  # the refused schemas used no id


def test_the_mode_decides_and_every_earlier_version_is_checked() -> None:
    backward = SchemaRegistry("BACKWARD")
    backward.register("s", ORDER_V2)
    assert backward.register("s", ORDER_V3_ALIASED).version == 2  # new readers read old records: enough here
    assert SchemaRegistry("NONE").register("s", BASE) and SchemaRegistry("none").mode == "NONE"
    # v2 gives "note" a default, v3 drops it: fine against v2, not against v1 (whose records have no note)
    transitive = SchemaRegistry("BACKWARD")
    transitive.register("s", BASE)
    v2 = with_field(BASE, f("note", "string", default=""))
    transitive.register("s", v2)
    v3 = with_field(BASE, f("note", "string"))
    assert check_compatibility(v3, v2, "BACKWARD")
    with pytest.raises(IncompatibleSchema) as refused:
        transitive.register("s", v3)
    assert refused.value.version == 1
    with pytest.raises(ValueError, match="compatibility mode"):
        SchemaRegistry("LOOSE")


def test_unknown_ids_and_empty_subjects_are_one_line_errors() -> None:
    registry = SchemaRegistry()
    registry.register("s", BASE)
    with pytest.raises(UnknownSchemaId) as unknown:
        registry.get(7)
    assert str(unknown.value) == "schema id 7 is not in the registry (known ids: 1)"
    assert isinstance(unknown.value, KeyError)
    with pytest.raises(SchemaRegistryError, match="no schema yet"):
        registry.latest("nothing-value")


# -- the schema id in a header ------------------------------------------------------------------------------------------

@pytest.fixture()
def registry() -> SchemaRegistry:
    found = SchemaRegistry("FULL")
    found.register("orders-value", ORDER_V1)
    found.register("orders-value", ORDER_V2)
    return found


def sent(registry: SchemaRegistry, version: int, **extra: Any) -> fakes.FakeRecord:
    broker = fakes.FakeBroker()
    producer = fakes.FakeProducer(broker, {})
    return send_order(producer, "orders", ORDER, registry.versions("orders-value")[version - 1], **extra).get()


def test_a_record_carries_its_schema_id_and_the_reader_picks_the_writer_schema_by_it(registry: SchemaRegistry) -> None:
    old, new = sent(registry, 1), sent(registry, 2, channel="app")
    assert old.headers == [(SCHEMA_ID_HEADER, b"1")] and new.headers == [schema_id_header(2)]
    assert old.key == ORDER.order_id.encode()
    read = {(w.headers[0][1], reader): decode_record(w, registry, schema)
            for w in (old, new) for reader, schema in (("v1", ORDER_V1), ("v2", ORDER_V2))}
    assert all(decoded.order == ORDER for decoded in read.values())
    assert read[(b"1", "v2")].fields["channel"] == "web" and read[(b"2", "v2")].fields["channel"] == "app"
    assert "channel" not in read[(b"2", "v1")].fields and read[(b"2", "v1")].writer.version == 2
    table = readings_table({"v1 reader": ReadResult((read[(b"1", "v1")],)), "v2 reader": ReadResult((read[(b"1", "v2")],))})
    assert list(table["channel"]) == ["(not in its schema)", "web"]


def test_send_order_takes_registered_schemas_only(registry: SchemaRegistry) -> None:
    with pytest.raises(TypeError, match="SchemaRegistry.register"):
        send_order(fakes.FakeProducer(fakes.FakeBroker(), {}), "orders", ORDER, ORDER_V3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("headers", "value", "reason"), [
    ([], "v2", f"no {SCHEMA_ID_HEADER} header: nothing says which schema wrote the record"),
    ([(SCHEMA_ID_HEADER, b"two")], "v2", f"the {SCHEMA_ID_HEADER} header is 'two', not a schema id"),
    ([schema_id_header(99)], "v2", "schema id 99 is not in the registry (known ids: 1, 2): the producer wrote with a schema "
                                   "nobody registered"),
    ([schema_id_header(2)], "json", "cannot read it as written by orders-value v2 (id 2): the bytes end before the "
                                    "writer's schema does"),
    ([schema_id_header(2)], None, "the record has no value"),
    ([schema_id_header(1)], "bad order", "order o-1: unknown currency 'XYZ'"),
])
def test_a_record_that_cannot_be_read_says_why(registry: SchemaRegistry, headers: list, value: Any, reason: str) -> None:
    values = {
        "v2": encode(order_record(ORDER, channel="app"), ORDER_V2),
        "json": encode_order(ORDER),
        None: None,
        "bad order": encode({**order_record(ORDER), "currency": "XYZ"}, ORDER_V1),
    }
    raw = fakes.FakeRecord("orders", 0, 5, b"k", values[value], headers)
    with pytest.raises(UndecodableRecord) as refused:
        decode_record(raw, registry, ORDER_V2)
    assert str(refused.value).startswith(reason) and "\n" not in str(refused.value)


def test_the_last_schema_id_header_counts() -> None:
    assert schema_id_of([(SCHEMA_ID_HEADER, b"1"), ("other", b"x"), (SCHEMA_ID_HEADER, b"2")]) == 2


def test_seeded_orders_make_the_same_bytes_every_time() -> None:
    first = OrderFactory(seed=11, customers=20).make(now=1_700_000_000.0)
    again = OrderFactory(seed=11, customers=20).make(now=1_700_000_000.0)
    assert encode(order_record(first), ORDER_V1) == encode(order_record(again), ORDER_V1)
