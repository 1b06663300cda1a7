"""Lesson 11's exercises: what a schema change does to old records and to old readers.

The checks judge with :func:`orderlab.avro.check_compatibility` (a walk over
both schemas); the registered solutions find the answer another way, by
writing a sample order with one schema and reading it back with the other
(fastavro), so the three-way test also holds the walk against fastavro.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..avro.codec import decode, encode, resolution_error
from ..avro.compat import check_compatibility
from ..avro.orders import ORDER_V1, ORDER_V2, SchemaChange, field_default, order_record, schema_changes
from ..events import LineItem, Order
from . import NotYet, exercise

_SAMPLE = Order.create("o-sample", "cust-00001", "sam.ple.1@example.com",
                       [LineItem("KB-001", "Keyboard", 2, 4_999)], created_at=1_700_000_000.0)


def _sample_datum() -> dict[str, Any]:
    """An order with a value for every field any of the changes names (a writer skips what its schema lacks)."""
    return order_record(_SAMPLE, coupon=None, channel="web", email=_SAMPLE.customer_email)


def readable_changes(changes: Mapping[str, SchemaChange], base: Mapping[str, Any], mode: str) -> set[str]:
    """The changes whose sample round trip works.

    BACKWARD writes with ``base`` and reads with the change; FORWARD the other way round.
    """
    if mode == "BACKWARD":
        return {name for name, c in changes.items() if resolution_error(_sample_datum(), base, c.schema) is None}
    return {name for name, c in changes.items() if resolution_error(_sample_datum(), c.schema, base) is None}


def _judge(answer: Any, changes: Mapping[str, SchemaChange], base: Mapping[str, Any], mode: str, *,
           picture: str, rules: str) -> str:
    if isinstance(answer, str) or not isinstance(answer, (set, frozenset, list, tuple)):
        raise NotYet(f"give a set of change names, such as {{'{next(iter(changes))}'}}, not a {type(answer).__name__}")
    if not all(isinstance(name, str) for name in answer):
        raise NotYet("give the changes by their names, as strings in quotes")
    chosen = set(answer)
    unknown = sorted(chosen - set(changes))
    if unknown:
        raise NotYet(f"no change is called {unknown[0]!r}: the names are {', '.join(changes)}")
    expected = {name for name, change in changes.items() if check_compatibility(change.schema, base, mode)}
    wrong = sorted(chosen - expected)
    if wrong:
        raise NotYet(f"{wrong[0]!r} is not {mode.lower()} compatible: {picture}")
    missing = expected - chosen
    if missing:
        are = "changes are" if len(missing) > 1 else "change is"
        raise NotYet(f"{len(missing)} more {are} {mode.lower()} compatible: {rules}")
    return f"{mode.lower()} compatible with v1: {', '.join(sorted(expected))}"


_CHANGES = schema_changes()


@exercise(
    "11.channel_default",
    hint="find a v1 record in the v2 reader's rows of the readings table, or read the channel field of ORDER_V2",
    facts={"reader": ORDER_V2, "field": "channel"},
    wrong="app",
    solution=lambda reader, field: decode(encode(order_record(_SAMPLE), ORDER_V1), ORDER_V1, reader)[field],
)
def channel_default(answer: Any, *, reader: Mapping[str, Any], field: str) -> str:
    expected = field_default(reader, field)
    if not isinstance(answer, str):
        raise NotYet(f"give the value as a string (in quotes), not a {type(answer).__name__}")
    if answer != expected:
        raise NotYet(
            f"{answer!r} is not it: a v1 record has no {field} at all; where does the v2 reader get a value from?")
    return f"a v1 record read by the v2 reader has {field} = {expected!r}: the reader's default"


@exercise(
    "11.backward",
    hint="for each change, picture a reader on the changed schema reading a record written with v1",
    facts={"changes": _CHANGES, "base": ORDER_V1},
    wrong={"add_coupon", "add_channel_no_default"},
    solution=lambda changes, base: readable_changes(changes, base, "BACKWARD"),
)
def backward(answer: Any, *, changes: Mapping[str, SchemaChange], base: Mapping[str, Any]) -> str:
    return _judge(
        answer, changes, base, "BACKWARD",
        picture="a reader on it meets a v1 record; can it fill each of its fields, with a type it may widen to?",
        rules="a reader ignores fields it does not know, fills its new fields from their defaults, "
              "and may widen a type",
    )


@exercise(
    "11.forward",
    hint="for each change, picture a v1 reader reading a record written with the changed schema",
    facts={"changes": _CHANGES, "base": ORDER_V1},
    wrong={"add_coupon", "widen_quantity"},
    solution=lambda changes, base: readable_changes(changes, base, "FORWARD"),
)
def forward(answer: Any, *, changes: Mapping[str, SchemaChange], base: Mapping[str, Any]) -> str:
    return _judge(
        answer, changes, base, "FORWARD",
        picture="a v1 reader meets a record written with it; can it fill every v1 field, with a type it may widen to?",
        rules="a v1 reader ignores fields it does not know, and may widen what the writer wrote",
    )
