"""A schema registry in the notebook's process: id → schema, with a compatibility check on registration.

What Confluent's Schema Registry (or Apicurio, or Karapace) does on a
server, small enough to read: every schema gets a number (its *id*), and
each *subject* (one per topic's values, ``<topic>-value``) keeps the
versions of its schema in order. A new version is accepted only if it is
compatible, under the subject's mode, with **every** version before it
(what those registries call the ``_TRANSITIVE`` modes), so a refused schema
never gets an id, and a producer that can only send with a registered id
(:func:`orderlab.avro.wire.send_order`) cannot write a record that some
reader could not read.

Registering a schema that is already a version of the subject (the same
JSON, whatever its spacing or the order of its keys) returns its id again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from .codec import Schema, parse, plain
from .compat import MODES, check_compatibility


def _normal(schema: Any) -> str:
    """The schema as JSON text with sorted keys and no spaces: equal for equal schemas.

    Not Avro's parsing canonical form, which drops defaults and aliases: two
    schemas that differ only in a default resolve differently.
    """
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


class SchemaRegistryError(ValueError):
    """A schema the registry refuses, or an id it does not know; the message is one line."""


class IncompatibleSchema(SchemaRegistryError):
    """The new version would break a reader or a writer of an earlier version (``reason`` says how)."""

    def __init__(self, subject: str, version: int, mode: str, reason: str) -> None:
        self.subject, self.version, self.mode, self.reason = subject, version, mode, reason
        super().__init__(f"{subject}: refused under {mode} compatibility with version {version}: {reason}")


class UnknownSchemaId(SchemaRegistryError, KeyError):
    """No schema has this id."""

    def __init__(self, schema_id: int, known: list[int]) -> None:
        self.schema_id = schema_id
        listed = ", ".join(map(str, known)) or "none yet"
        super().__init__(f"schema id {schema_id} is not in the registry (known ids: {listed})")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject's schema, under its id."""

    id: int
    subject: str
    version: int
    schema: Any  # as registered (plain JSON data)
    parsed: Any = field(repr=False, compare=False)  # fastavro's parsed form, for encoding and decoding

    @property
    def label(self) -> str:
        """``orders_avro-value v2 (id 2)``."""
        return f"{self.subject} v{self.version} (id {self.id})"

    @property
    def field_names(self) -> tuple[str, ...]:
        """The top-level fields of a record schema (empty for any other)."""
        if isinstance(self.schema, dict) and self.schema.get("type") == "record":
            return tuple(f["name"] for f in self.schema["fields"])
        return ()


class SchemaRegistry:
    """Subjects, their versions and ids; safe to share between threads.

    ``mode``: BACKWARD (the default of Confluent's registry), FORWARD, FULL
    or NONE (no check), for every subject.
    """

    def __init__(self, mode: str = "BACKWARD") -> None:
        if mode.upper() not in MODES:
            raise ValueError(f"compatibility mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode.upper()
        self._lock = threading.Lock()
        self._by_id: dict[int, RegisteredSchema] = {}
        self._subjects: dict[str, list[RegisteredSchema]] = {}

    def register(self, subject: str, schema: Schema) -> RegisteredSchema:
        """Add ``schema`` as the subject's next version (or find it, if it is one already).

        Raises :class:`IncompatibleSchema` when it is not compatible with every
        earlier version under the registry's mode; nothing is registered then.
        """
        data = plain(schema)
        parsed = parse(data)
        same = _normal(data)
        with self._lock:
            versions = self._subjects.get(subject, [])
            for earlier in versions:
                if _normal(earlier.schema) == same:
                    return earlier
            for earlier in reversed(versions):  # the latest first: its problem is the one a user expects to read
                verdict = check_compatibility(data, earlier.schema, self.mode)
                if not verdict:
                    raise IncompatibleSchema(subject, earlier.version, self.mode, verdict.reason)
            registered = RegisteredSchema(len(self._by_id) + 1, subject, len(versions) + 1, data, parsed)
            self._by_id[registered.id] = registered
            self._subjects[subject] = [*versions, registered]
            return registered

    def get(self, schema_id: int) -> RegisteredSchema:
        """The schema with this id; raises :class:`UnknownSchemaId`."""
        with self._lock:
            found = self._by_id.get(schema_id)
            if found is None:
                raise UnknownSchemaId(schema_id, sorted(self._by_id))
            return found

    def versions(self, subject: str) -> list[RegisteredSchema]:
        """Every version of the subject, oldest first (empty if it has none)."""
        with self._lock:
            return list(self._subjects.get(subject, ()))

    def latest(self, subject: str) -> RegisteredSchema:
        """The subject's newest version; raises :class:`SchemaRegistryError` if it has none."""
        versions = self.versions(subject)
        if not versions:
            raise SchemaRegistryError(f"subject {subject!r} has no schema yet: register one first")
        return versions[-1]

    def table(self) -> pd.DataFrame:
        """One row per id: subject, version, how many top-level fields, and which changed since the version before."""
        with self._lock:
            found = list(self._by_id.values())
        rows = []
        for registered in found:
            before = [s for s in found if s.subject == registered.subject and s.version == registered.version - 1]
            rows.append({"id": registered.id, "subject": registered.subject, "version": registered.version,
                         "fields": len(registered.field_names),
                         "since the version before": field_changes(before[0], registered) if before else "(first)"})
        columns = ["id", "subject", "version", "fields", "since the version before"]
        return pd.DataFrame(rows, columns=columns).set_index("id")


def field_changes(old: RegisteredSchema, new: RegisteredSchema) -> str:
    """The top-level fields ``new`` adds and removes, as ``+channel -customer_email``."""
    added = [f"+{name}" for name in new.field_names if name not in old.field_names]
    removed = [f"-{name}" for name in old.field_names if name not in new.field_names]
    return " ".join([*added, *removed]) or "(same fields)"
