"""The order as an Avro record: three versions of its schema, and changes to compare.

The fields are those of the JSON record (:func:`orderlab.events.encode_order`):
money in integer cents, ``created_at`` in unix seconds. Version 2 adds
``channel`` with a default, so readers and writers of either version
understand each other; version 3 renames ``customer_email`` to ``email``
without an alias, which no registry in FULL mode lets through.
:data:`CHANGES` are six edits of version 1 for lesson 11's exercises:
some keep old records readable, some keep old readers working, some both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..events import Order, order_dict, order_from_dict
from .compat import can_read, check_compatibility

ORDER_V1: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "orderlab",
    "doc": "An order as the Orders Backend places it; money in integer cents",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "customer_id", "type": "string"},
        {"name": "customer_email", "type": "string"},
        {"name": "items", "type": {"type": "array", "items": {
            "type": "record",
            "name": "LineItem",
            "fields": [
                {"name": "sku", "type": "string"},
                {"name": "name", "type": "string"},
                {"name": "quantity", "type": "int"},
                {"name": "unit_price_cents", "type": "int"},
            ],
        }}},
        {"name": "total_cents", "type": "long"},
        {"name": "currency", "type": "string"},
        {"name": "created_at", "type": "double", "doc": "unix seconds"},
    ],
}


def with_field(schema: Mapping[str, Any], field: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the record ``schema`` with ``field`` added at the end."""
    changed = copy.deepcopy(dict(schema))
    changed["fields"].append(copy.deepcopy(dict(field)))
    return changed


def without_field(schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of the record ``schema`` without its field ``name``."""
    changed = copy.deepcopy(dict(schema))
    changed["fields"] = [f for f in changed["fields"] if f["name"] != name]
    if len(changed["fields"]) == len(schema["fields"]):
        raise KeyError(f"the schema has no field {name!r}")
    return changed


def renamed_field(schema: Mapping[str, Any], old: str, new: str, *, alias: bool = False) -> dict[str, Any]:
    """A copy with field ``old`` called ``new``; with ``alias``, the old name is kept as an alias."""
    changed = copy.deepcopy(dict(schema))
    for found in changed["fields"]:
        if found["name"] == old:
            found["name"] = new
            if alias:
                found["aliases"] = [*found.get("aliases", []), old]
            return changed
    raise KeyError(f"the schema has no field {old!r}")


def retyped_field(schema: Mapping[str, Any], path: str, new_type: Any) -> dict[str, Any]:
    """A copy with the field at ``path`` (``"total_cents"``, ``"items.quantity"``) of type ``new_type``."""
    changed = copy.deepcopy(dict(schema))
    record = changed
    *outer, last = path.split(".")
    for name in outer:
        inner = next(f for f in record["fields"] if f["name"] == name)["type"]
        record = inner["items"] if inner.get("type") == "array" else inner
    for found in record["fields"]:
        if found["name"] == last:
            found["type"] = new_type
            return changed
    raise KeyError(f"the schema has no field {path!r}")


ORDER_V2 = with_field(ORDER_V1, {
    "name": "channel", "type": "string", "default": "web",
    "doc": "where the order was placed: web, app or phone; orders from before version 2 came from the web shop",
})
ORDER_V3 = renamed_field(ORDER_V2, "customer_email", "email")
ORDER_V3_ALIASED = renamed_field(ORDER_V2, "customer_email", "email", alias=True)


@dataclass(frozen=True)
class SchemaChange:
    """One edit of a schema: a name to answer with, what it does, and the schema it makes."""

    name: str
    description: str
    schema: dict[str, Any]


def schema_changes(base: Mapping[str, Any] = ORDER_V1) -> dict[str, SchemaChange]:
    """Six edits of ``base`` (lesson 11's exercises), by name."""
    changes = [
        SchemaChange("add_coupon", "add coupon: [null, string], default null",
                     with_field(base, {"name": "coupon", "type": ["null", "string"], "default": None})),
        SchemaChange("add_channel_no_default", "add channel: string, no default",
                     with_field(base, {"name": "channel", "type": "string"})),
        SchemaChange("drop_email", "remove customer_email", without_field(base, "customer_email")),
        SchemaChange("rename_email", "rename customer_email to email, no alias",
                     renamed_field(base, "customer_email", "email")),
        SchemaChange("widen_quantity", "items[].quantity: int to long", retyped_field(base, "items.quantity", "long")),
        SchemaChange("narrow_total", "total_cents: long to int", retyped_field(base, "total_cents", "int")),
    ]
    return {change.name: change for change in changes}


def changes_table(changes: Mapping[str, SchemaChange], base: Mapping[str, Any] = ORDER_V1, *,
                  verdicts: bool = False) -> pd.DataFrame:
    """The changes, one row each; with ``verdicts``, whether each is backward and forward compatible with ``base``."""
    rows = []
    for change in changes.values():
        row: dict[str, Any] = {"change": change.name, "what it does": change.description}
        if verdicts:
            row["backward"] = bool(check_compatibility(change.schema, base, "BACKWARD"))
            row["forward"] = bool(check_compatibility(change.schema, base, "FORWARD"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("change")


def why_not(changes: Mapping[str, SchemaChange], base: Mapping[str, Any] = ORDER_V1) -> list[str]:
    """One line per change and direction that fails: ``name, backward: the first problem``."""
    lines = []
    for change in changes.values():
        for mode in ("BACKWARD", "FORWARD"):
            verdict = can_read(base, change.schema) if mode == "BACKWARD" else can_read(change.schema, base)
            if not verdict:
                lines.append(f"{change.name}, {mode.lower()}: {verdict.reason}")
    return lines


def field_default(schema: Mapping[str, Any], name: str) -> Any:
    """The default of the record ``schema``'s field ``name`` (KeyError if it has none)."""
    for found in schema["fields"]:
        if found["name"] == name:
            if "default" not in found:
                raise KeyError(f"field {name!r} has no default")
            return found["default"]
    raise KeyError(f"the schema has no field {name!r}")


def order_record(order: Order, **extra: Any) -> dict[str, Any]:
    """An :class:`~orderlab.events.Order` as the datum an order schema writes; ``extra`` adds fields."""
    return {**order_dict(order), **extra}


def order_from_record(datum: Mapping[str, Any]) -> Order:
    """The validated :class:`~orderlab.events.Order` of a decoded datum (``email`` read as ``customer_email``).

    Raises :class:`~orderlab.events.EventError` as the JSON decoder does, listing every problem.
    """
    fields = dict(datum)
    if "customer_email" not in fields and "email" in fields:
        fields["customer_email"] = fields["email"]
    return order_from_dict(fields)
