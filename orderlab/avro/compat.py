"""Can a reader on one schema read what a writer on another wrote? Avro's resolution rules, by walking both schemas.

Avro reads a record written with the *writer's* schema through the
*reader's* schema (the specification's "Schema Resolution"): fields are
matched by name (or by one of the reader field's ``aliases``), a writer's
field the reader does not have is skipped, a reader's field the writer does
not have takes the reader's ``default`` (no default: the record cannot be
read), an ``int`` may be read as a ``long``, ``float`` or ``double`` (never
back), a ``string`` as ``bytes`` and back, an enum symbol the reader lacks
needs the reader's default, and a union is read branch by branch.

:func:`can_read` applies those rules to the two schemas, not to a sample
record, so every field, union branch and enum symbol is covered, and names
each problem by its path (``Order.items[].quantity``).
:func:`check_compatibility` says it the way a schema registry does:

- **BACKWARD**: readers on the *new* schema can read records written with
  the *old* one (upgrade the consumers first);
- **FORWARD**: readers on the *old* schema can read records written with the
  *new* one (upgrade the producers first);
- **FULL**: both, so producers and consumers upgrade in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema

from .codec import AvroError, Schema, plain

MODES = ("BACKWARD", "FORWARD", "FULL", "NONE")
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# what the writer's type may be read as, besides itself
PROMOTIONS: dict[str, tuple[str, ...]] = {
    "int": ("long", "float", "double"),
    "long": ("float", "double"),
    "float": ("double",),
    "string": ("bytes",),
    "bytes": ("string",),
}
_NUMBERS = ("int", "long", "float", "double")
_COMPLEX = frozenset({"record", "error", "enum", "fixed", "array", "map"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})


@dataclass(frozen=True)
class Compatibility:
    """The verdict: compatible or not, and every problem found (each a one-line sentence)."""

    compatible: bool
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.compatible

    @property
    def reason(self) -> str:
        """One line: ``compatible``, or the first problem (and how many more there are)."""
        if not self.problems:
            return "compatible"
        more = len(self.problems) - 1
        return self.problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")

    def __str__(self) -> str:
        return self.reason


def _names(schema: Schema) -> tuple[Any, dict[str, Any]]:
    """The parsed schema and its named types by full name (references in it are full names)."""
    named: dict[str, Any] = {}
    try:
        parsed = parse_schema(plain(schema), named_schemas=named)
    except Exception as exc:  # noqa: BLE001 - fastavro's parse errors are of several kinds
        raise AvroError(f"not a valid Avro schema: {' '.join(str(exc).split())[:160]}") from None
    return parsed, named


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return "error" if schema["type"] == "error" else schema["type"]
    return schema


def _short_name(name: str) -> str:
    return name.rpartition(".")[2]


def _describe(schema: Any) -> str:
    """``string``, ``record Order``, ``union [null, string]``, ``array``..."""
    kind = _kind(schema)
    if kind == "union":
        return "union [" + ", ".join(_describe(branch) for branch in schema) + "]"
    if kind in _NAMED:
        return f"{kind} {_short_name(schema['name'])}"
    return _short_name(kind)


def _names_match(writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    """Same unqualified name, or the writer's name is one of the reader's aliases (as fastavro decides it)."""
    aliases = reader.get("aliases", ())
    return (_short_name(writer["name"]) == _short_name(reader["name"]) or writer["name"] in aliases
            or _short_name(writer["name"]) in aliases)


class _Walk:
    """One comparison of a writer's schema with a reader's; collects the problems it meets."""

    def __init__(self, writer_names: dict[str, Any], reader_names: dict[str, Any]) -> None:
        self.writer_names = writer_names
        self.reader_names = reader_names
        self.assumed: set[tuple[str, str]] = set()  # record pairs under comparison (recursive types end here)
        self.problems: list[str] = []

    @staticmethod
    def _resolve(schema: Any, names: dict[str, Any]) -> Any:
        if isinstance(schema, str):
            return names.get(schema, schema)
        if isinstance(schema, dict) and schema["type"] not in _COMPLEX:
            inner = schema["type"]  # {"type": "long", "logicalType": ...} or {"type": "some.Name"}
            return inner if inner in PRIMITIVES else names.get(inner, inner)
        return schema

    def matches(self, writer: Any, reader: Any) -> bool:
        """Whether a union's ``reader`` branch is the one Avro picks for ``writer`` (no deep check)."""
        writer = self._resolve(writer, self.writer_names)
        reader = self._resolve(reader, self.reader_names)
        w, r = _kind(writer), _kind(reader)
        if w in PRIMITIVES and r in PRIMITIVES:
            return w == r or r in PROMOTIONS.get(w, ())
        if w in _NAMED and w == r:
            return _names_match(writer, reader)
        if w == r == "array":
            return self.matches(writer["items"], reader["items"])
        if w == r == "map":
            return self.matches(writer["values"], reader["values"])
        return False

    def compare(self, writer: Any, reader: Any, path: str) -> None:
        writer = self._resolve(writer, self.writer_names)
        reader = self._resolve(reader, self.reader_names)
        w, r = _kind(writer), _kind(reader)
        if w == "union":  # any branch may have been written: each must be readable
            for branch in writer:
                self.compare(branch, reader, path)
            return
        if r == "union":
            for branch in reader:
                if self.matches(writer, branch):
                    self.compare(writer, branch, path)
                    return
            self.problems.append(
                f"{path}: the writer's {_describe(writer)} is no branch of the reader's {_describe(reader)}")
            return
        if w in PRIMITIVES and r in PRIMITIVES:
            if w != r and r not in PROMOTIONS.get(w, ()):
                numbers = w in _NUMBERS and r in _NUMBERS
                widening = " (Avro widens int to long, float or double, never back)" if numbers else ""
                self.problems.append(f"{path}: the writer's {w} cannot be read as {r}{widening}")
            return
        if w != r:
            self.problems.append(f"{path}: the writer's {_describe(writer)} cannot be read as {_describe(reader)}")
            return
        if w in _NAMED and not _names_match(writer, reader):
            self.problems.append(
                f"{path}: the writer's {w} {_short_name(writer['name'])} is not the reader's "
                f"{_short_name(reader['name'])} "
                "(the reader needs the same name, or the writer's name among its aliases)"
            )
            return
        if w in ("record", "error"):
            self.records(writer, reader, path)
        elif w == "enum":
            missing = [symbol for symbol in writer["symbols"] if symbol not in reader["symbols"]]
            if missing and "default" not in reader:
                self.problems.append(
                    f"{path}: the reader's enum lacks the writer's symbol{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} and has no default symbol"
                )
        elif w == "fixed":
            if writer["size"] != reader["size"]:
                self.problems.append(
                    f"{path}: the writer's fixed is {writer['size']} bytes, the reader's {reader['size']}")
        elif w == "array":
            self.compare(writer["items"], reader["items"], f"{path}[]")
        elif w == "map":
            self.compare(writer["values"], reader["values"], f"{path}{{}}")

    def records(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        pair = (writer["name"], reader["name"])
        if pair in self.assumed:
            return
        self.assumed.add(pair)
        written = {field["name"]: field for field in writer["fields"]}
        found: dict[str, dict[str, Any] | None] = {}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", ())]
            found[field["name"]] = next((written[name] for name in names if name in written), None)
        unread = [name for name in written if all(match is None or match["name"] != name for match in found.values())]
        for field in reader["fields"]:
            where = f"{path}.{field['name']}"
            match = found[field["name"]]
            if match is not None:
                self.compare(match["type"], field["type"], where)
            elif "default" not in field:
                renamed = (f" (the writer has {unread[0]!r}: if that is this field renamed, the reader's field needs "
                           f"{unread[0]!r} among its aliases)") if unread else ""
                self.problems.append(
                    f"{where}: the writer has no field {field['name']!r} and the reader gives it no default{renamed}"
                )


def can_read(writer: Schema, reader: Schema) -> Compatibility:
    """Whether every record written with ``writer`` can be read through ``reader``, by Avro's resolution rules."""
    writer_parsed, writer_names = _names(writer)
    reader_parsed, reader_names = _names(reader)
    walk = _Walk(writer_names, reader_names)
    root = _Walk._resolve(reader_parsed, reader_names)
    path = _short_name(root["name"]) if _kind(root) in _NAMED else "the value"
    walk.compare(writer_parsed, reader_parsed, path)
    return Compatibility(not walk.problems, tuple(walk.problems))


def check_compatibility(new: Schema, old: Schema, mode: str = "BACKWARD") -> Compatibility:
    """Whether ``new`` may follow ``old`` under ``mode`` (BACKWARD, FORWARD, FULL or NONE); see the module's doc."""
    wanted = mode.upper()
    if wanted not in MODES:
        raise ValueError(f"compatibility mode must be one of {', '.join(MODES)}, got {mode!r}")
    problems: list[str] = []
    if wanted in ("BACKWARD", "FULL"):
        problems += [f"not backward compatible (a new reader, an old record): {p}" for p in can_read(old, new).problems]
    if wanted in ("FORWARD", "FULL"):
        problems += [f"not forward compatible (an old reader, a new record): {p}" for p in can_read(new, old).problems]
    return Compatibility(not problems, tuple(problems))
