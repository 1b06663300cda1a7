"""One Avro datum as bytes, and back: the value of one Kafka record.

fastavro's ``schemaless_writer`` writes a datum with no header, no schema
and no field names: only the values, in the schema's field order (strings
and arrays prefixed by their length, integers as variable-length zig-zag
numbers). The bytes therefore mean nothing without the writer's schema: a
reader needs it, plus its own schema when they differ (Avro then *resolves*
one against the other: fields matched by name, defaults filled in, ints
widened to longs). Which writer schema a record was written with travels
beside it (see :mod:`orderlab.avro.wire`).
"""

from __future__ import annotations

import copy
import json
from io import BytesIO
from typing import Any, Mapping, Union

import pandas as pd
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, UnknownType

# A schema as Avro's JSON has it: a dict (a record, an enum, an array...), a
# list (a union) or a string (a primitive or a named type); JSON text works too.
Schema = Union[Mapping[str, Any], list, str]

# The longest error text of fastavro kept in a reason (its resolution errors quote whole schemas).
_MOST = 160


class AvroError(ValueError):
    """A schema that does not parse, a datum that does not fit its schema, or bytes that do not decode; one line."""


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= _MOST else text[: _MOST - 1] + "…"


def plain(schema: Schema) -> Any:
    """``schema`` as plain JSON data (parsed from text if it is a JSON string; a deep copy otherwise)."""
    if isinstance(schema, str) and schema.lstrip().startswith(("{", "[", '"')):
        try:
            return json.loads(schema)
        except ValueError as exc:
            raise AvroError(f"the schema is not JSON: {exc}") from None
    return copy.deepcopy(schema)


def parse(schema: Schema) -> Any:
    """The schema parsed by fastavro (names made full, every named type known); raises :class:`AvroError`."""
    if isinstance(schema, dict) and schema.get("__fastavro_parsed"):
        return schema
    try:
        return parse_schema(plain(schema))
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
        raise AvroError(f"not a valid Avro schema: {_short(exc)}") from None


def encode(datum: Any, schema: Schema) -> bytes:
    """``datum`` as Avro binary with ``schema`` (no header, no schema in the bytes)."""
    buffer = BytesIO()
    try:
        schemaless_writer(buffer, parse(schema), datum)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise AvroError(f"the datum does not fit the schema: {_short(exc)}") from None
    return buffer.getvalue()


def decode(data: bytes, writer: Schema, reader: Schema | None = None) -> Any:
    """Read ``data``, written with ``writer``, as ``reader`` sees it (``writer`` too when not given).

    Every byte must belong to the datum: bytes left over mean the record was
    not written with ``writer`` (fastavro alone would ignore them).
    """
    buffer = BytesIO(data)
    writer_parsed = parse(writer)
    try:
        if reader is None:
            datum = schemaless_reader(buffer, writer_parsed, None)
        else:
            datum = schemaless_reader(buffer, writer_parsed, parse(reader))
    except EOFError as exc:
        raise AvroError(f"the bytes end before the writer's schema does ({_short(exc)})") from None
    except SchemaResolutionError as exc:
        raise AvroError(f"the reader's schema cannot read the writer's: {_short(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - fastavro raises many kinds on foreign bytes; each becomes one line
        kind = type(exc).__name__
        raise AvroError(f"the bytes do not decode with the writer's schema ({kind}: {_short(exc)})") from None
    left = len(data) - buffer.tell()
    if left:
        raise AvroError(f"{left} bytes left over after the datum: they were not written with the writer's schema")
    return datum


def resolution_error(datum: Any, writer: Schema, reader: Schema) -> str | None:
    """Write ``datum`` with ``writer`` and read it back with ``reader``: None when that works, else why not.

    A test on one sample, not a proof: a union branch or enum symbol the
    sample does not use is never tried. :func:`orderlab.avro.compat.can_read`
    walks the schemas instead.
    """
    try:
        decode(encode(datum, writer), writer, reader)
    except AvroError as exc:
        return str(exc)
    return None


def hex_dump(data: bytes, width: int = 16) -> str:
    """``data`` as lines of ``offset  hex bytes  |printable|``, as ``xxd``/``hexdump -C`` show it."""
    lines = []
    for start in range(0, len(data), width):
        chunk = data[start:start + width]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{start:04x}  {hexes:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)


def field_layout(datum: Mapping[str, Any], schema: Schema, *, most_bytes: int = 12) -> pd.DataFrame:
    """Which bytes of a record's encoding hold which field: offset, length, the first bytes in hex.

    A record's encoding is its fields' encodings one after the other, so the
    encoding of its first k fields is a prefix of the whole: each field's
    bytes are found by encoding longer and longer prefixes of the schema.
    """
    record = plain(schema)
    if not isinstance(record, dict) or record.get("type") != "record":
        raise AvroError("field_layout needs a record schema")
    whole = encode(datum, schema)
    rows = []
    start = 0
    for count, field in enumerate(record["fields"], 1):
        prefix = {**record, "fields": record["fields"][:count]}
        end = len(encode({f["name"]: datum[f["name"]] for f in prefix["fields"] if f["name"] in datum}, prefix))
        piece = whole[start:end]
        shown = " ".join(f"{byte:02x}" for byte in piece[:most_bytes]) + (" …" if len(piece) > most_bytes else "")
        rows.append({"field": field["name"], "offset": start, "bytes": end - start, "hex": shown})
        start = end
    return pd.DataFrame(rows, columns=["field", "offset", "bytes", "hex"]).set_index("field")
