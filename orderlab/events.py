"""The records that travel between the roles.

Money is integer cents (floats cannot add up prices exactly). Every record
encodes to compact JSON and decodes with validation; anything wrong raises
one :class:`EventError` that lists every problem of the record, which the
consumers copy into the dead-letter topic's headers.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

try:  # optional: writes the event classes straight to JSON, several times faster than the standard library
    import orjson
except ImportError:  # pragma: no cover - exercised when orjson is not installed
    orjson = None  # type: ignore[assignment]
try:  # optional: reads JSON straight into the event classes (types checked in C), about twice as fast
    import msgspec
except ImportError:  # pragma: no cover - exercised when msgspec is not installed
    msgspec = None  # type: ignore[assignment]

CURRENCIES = ("EUR", "USD", "GBP")
# Customers' addresses must be at a reserved domain (RFC 2606), so the demo can
# never e-mail a real person even if pointed at a real SMTP server.
RESERVED_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
MAX_ITEMS = 50
MAX_QUANTITY = 100
# The most bytes a record's value may have to be read at all. The largest
# order a shop could send (MAX_ITEMS line items with 200-character names) is
# about 14 kB and a generated one under 1 kB; 64 kB leaves room for that and
# is a sixteenth of the producer's max_request_size (1 MiB), so the outcome a
# role writes for an accepted order always fits in a request. A record beyond
# it is dead-lettered instead of wedging the role that would write it on.
MAX_ORDER_BYTES = 64 * 1024
# An outcome is its order plus a few fields; written by the standard library
# (ensure_ascii, for integers beyond 64 bits) its order can take three times
# the bytes, so every outcome of an accepted order is accepted downstream.
MAX_OUTCOME_BYTES = 4 * MAX_ORDER_BYTES
# Keys are order ids (a UUID is 36 bytes); one far longer is not an id, and
# copied onto every output it would make them too large to send.
MAX_KEY_BYTES = 1024
# How many decoded records at most wait for another consumer group of the
# process to read them (see SharedDecodes): about 1.7 kB each with their
# bytes, so up to 28 MB per record type while one group runs far behind.
SHARED_DECODES_LIMIT = 16384


class EventError(ValueError):
    """A record is not a valid orderlab event; the message says why."""


@dataclass(frozen=True)
class LineItem:
    """One line of an order: a catalogue product, how many, at what unit price (cents)."""
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        """quantity x unit price, in cents."""
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Order:
    """An order as the shop placed it; validated when made (every problem at once, as EventError)."""
    order_id: str
    customer_id: str
    customer_email: str
    items: tuple[LineItem, ...]
    total_cents: int
    currency: str
    created_at: float  # unix seconds

    def __post_init__(self) -> None:
        # validate_order, inlined: every decoded record comes through here
        problems = order_problems(
            self.order_id, self.customer_id, self.customer_email, self.items, self.total_cents, self.currency,
            self.created_at,
        )
        if problems:
            raise EventError(describe_problems(self.order_id, problems))

    @property
    def item_count(self) -> int:
        """Units ordered, over all lines (not the number of lines)."""
        return sum(item.quantity for item in self.items)

    @classmethod
    def create(
        cls,
        order_id: str,
        customer_id: str,
        customer_email: str,
        items: list[LineItem] | tuple[LineItem, ...],
        currency: str = "EUR",
        created_at: float | None = None,
    ) -> "Order":
        """An order whose total is the sum of its items (the usual way in)."""
        items = tuple(items)
        return cls(
            order_id=order_id,
            customer_id=customer_id,
            customer_email=customer_email,
            items=items,
            total_cents=sum(item.total_cents for item in items),
            currency=currency,
            created_at=time.time() if created_at is None else created_at,
        )


@dataclass(frozen=True)
class PaymentResult:
    """What the transactions role decided for one order."""

    order_id: str
    approved: bool
    reason: str  # "approved", or why it was declined
    payment_id: str
    processed_at: float


@dataclass(frozen=True)
class ConfirmedOrder:
    """The outcome of a paid order: the order, its payment reference and when it was confirmed."""
    order: Order
    payment_id: str
    confirmed_at: float


@dataclass(frozen=True)
class DeclinedOrder:
    """The outcome of a declined payment: the order, why it was declined and when."""
    order: Order
    reason: str
    declined_at: float


# -- validation ---------------------------------------------------------------
#
# Every check appends to a list instead of raising, so one EventError names
# every problem of a record at once ("order o-1: unknown currency 'XYZ' (...);
# total_cents 5 does not match its items (1000)"); the dead-letter reason is
# that message. A valid order makes the same tests as a first-problem check
# would, and nothing else: no message is formatted and the list stays empty.

class _Unread:
    """Stands for a field the decoder could not read; its problem is already listed, so no check looks at it."""

    def __repr__(self) -> str:
        return "<unread>"


_UNREAD: Any = _Unread()


def validate_order(order: Order) -> None:
    """Raise one :class:`EventError` listing every problem of ``order``; return if there is none."""
    problems = order_problems(
        order.order_id, order.customer_id, order.customer_email, order.items, order.total_cents, order.currency,
        order.created_at,
    )
    if problems:
        raise EventError(describe_problems(order.order_id, problems))


def describe_problems(order_id: Any, problems: list[str]) -> str:
    """``order ID: first; second; ...`` (``order: ...`` when the id itself is missing)."""
    prefix = f"order {order_id}" if isinstance(order_id, str) and order_id else "order"
    return f"{prefix}: {'; '.join(problems)}"


def order_problems(
    order_id: Any, customer_id: Any, customer_email: Any, items: Any, total_cents: Any, currency: Any, created_at: Any,
    _unread: Any = _UNREAD,  # bound as a local name: this runs for every record
) -> list[str]:
    """Every rule an order breaks, in field order; empty for a valid order.

    A value that is ``_UNREAD`` (an item too) was not readable and is
    skipped, and so is the total check when any item or the total is.
    """
    problems: list[str] = []
    if order_id is not _unread and (not isinstance(order_id, str) or not order_id):
        problems.append("order_id is missing")
    if customer_id is not _unread and (not isinstance(customer_id, str) or not customer_id):
        problems.append("customer_id is missing")
    if customer_email is not _unread:
        # the usual case tested inline (a local part, and a reserved domain after the last @); email_problem words the rest
        local, _, domain = customer_email.rpartition("@") if type(customer_email) is str else ("", "", "")
        if not local or domain.lower() not in RESERVED_EMAIL_DOMAINS:
            problems.append(_email_wrong(customer_email))
    if currency is not _unread and currency not in CURRENCIES:
        problems.append(_unknown_currency(currency))
    if items is not _unread:
        countable = total_cents is not _unread
        if not items:
            problems.append("has no items")
        elif len(items) > MAX_ITEMS:
            problems.append(f"more than {MAX_ITEMS} line items")
        for item in items:
            if item is _unread:
                countable = False
                continue
            quantity, price = item.quantity, item.unit_price_cents
            if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:  # the exact test first: it is the hot path
                problem = quantity_problem(item.sku, quantity)
                if problem is not None:
                    problems.append(problem)
                    countable = countable and isinstance(quantity, (int, float))
            if not isinstance(price, int) or price <= 0:
                problems.append(f"price of {item.sku} must be a positive number of cents")
                countable = countable and isinstance(price, (int, float))
        if countable:
            expected = sum(item.total_cents for item in items)
            if total_cents != expected:
                problems.append(f"total_cents {total_cents} does not match its items ({expected})")
    if created_at is not _unread and (
        not isinstance(created_at, (int, float)) or not 0 < created_at < math.inf  # also refuses NaN
    ):
        problems.append("created_at must be a positive unix time")
    return problems


def email_problem(address: Any) -> str | None:
    """What is wrong with ``address`` as a customer's e-mail, or None: it needs a local part and a reserved domain."""
    if isinstance(address, str):
        local, _, domain = address.rpartition("@")
        if local and domain.lower() in RESERVED_EMAIL_DOMAINS:
            return None
    return _email_wrong(address)


def _email_wrong(address: Any) -> str:
    """The words for an address :func:`email_problem` refuses."""
    if not isinstance(address, str) or not address:
        return "customer_email is missing"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return f"customer_email {address!r} is not an e-mail address"
    return f"customer_email must be at a reserved demo domain ({', '.join(RESERVED_EMAIL_DOMAINS)}), got {domain!r}"


def currency_problem(currency: Any) -> str | None:
    """What is wrong with ``currency``, or None."""
    return None if currency in CURRENCIES else _unknown_currency(currency)


def _unknown_currency(currency: Any) -> str:
    return f"unknown currency {currency!r} (known: {', '.join(CURRENCIES)})"


def quantity_problem(sku: Any, quantity: Any) -> str | None:
    """What is wrong with ``quantity`` of one line item, or None."""
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return f"quantity of {sku} is not a whole number"
    if not 1 <= quantity <= MAX_QUANTITY:
        return f"quantity of {sku} must be 1..{MAX_QUANTITY}, got {quantity}"
    return None


# -- JSON ---------------------------------------------------------------------

def order_dict(order: Order) -> dict[str, Any]:
    """An order as plain data: what its JSON record holds (the Avro lesson writes the same fields)."""
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "customer_email": order.customer_email,
        "items": [
            {"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}
            for i in order.items
        ],
        "total_cents": order.total_cents,
        "currency": order.currency,
        "created_at": order.created_at,
    }


def _std_dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _std_loads(raw: bytes) -> Any:
    return json.loads(raw)


def _encoding(as_dict: Callable[[Any], dict[str, Any]]) -> Callable[[Any], bytes]:
    """An encoder: orjson writes the record's dataclass directly, the standard library what orjson cannot.

    orjson writes a dataclass's fields in their declared order, which is the
    order of ``as_dict``'s keys, so both ways give the same bytes; orjson
    only refuses integers beyond 64 bits, which the standard library writes
    exactly. Writing the dataclass skips building the dicts in Python, which
    cost more than the JSON itself.
    """
    if orjson is None:  # pragma: no cover
        return lambda record: _std_dumps(as_dict(record))
    dumps = orjson.dumps

    def encode(record: Any) -> bytes:
        try:
            return dumps(record)
        except TypeError:  # an integer beyond 64 bits
            return _std_dumps(as_dict(record))

    return encode


def _confirmed_dict(record: ConfirmedOrder) -> dict[str, Any]:
    return {"order": order_dict(record.order), "payment_id": record.payment_id, "confirmed_at": record.confirmed_at}


def _declined_dict(record: DeclinedOrder) -> dict[str, Any]:
    return {"order": order_dict(record.order), "reason": record.reason, "declined_at": record.declined_at}


_encode_order = _encoding(order_dict)
_encode_confirmed = _encoding(_confirmed_dict)
_encode_declined = _encoding(_declined_dict)


def encode_order(order: Order) -> bytes:
    """An order as compact JSON bytes (the value of an order_details record)."""
    return _encode_order(order)


def encode_confirmed(record: ConfirmedOrder) -> bytes:
    """A confirmed order as compact JSON bytes (an order_confirmed record)."""
    return _encode_confirmed(record)


def encode_declined(record: DeclinedOrder) -> bytes:
    """A declined order as compact JSON bytes (an order_declined record)."""
    return _encode_declined(record)


def check_key(key: bytes | None) -> None:
    """Refuse a key that is not an id: longer than :data:`MAX_KEY_BYTES`, or not UTF-8 text.

    Every orderlab record is keyed by its order id (text); a role copies the
    key onto what it writes, and the reconciliation reads keys as text.
    """
    if key is None:
        return
    if len(key) > MAX_KEY_BYTES:
        raise EventError(f"key is {len(key):,} bytes; a key is an order id of at most {MAX_KEY_BYTES:,}")
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        raise EventError(f"key is not UTF-8 text ({key[:20]!r}); a key is an order id") from None


def check_size(raw: bytes | None, what: str, limit: int) -> None:
    """Refuse a record value of more than ``limit`` bytes before parsing it (see :data:`MAX_ORDER_BYTES`)."""
    if raw is not None and len(raw) > limit:
        raise EventError(
            f"{what} record is {len(raw):,} bytes, more than the {limit:,} one may have "
            f"(an order of {MAX_ITEMS} line items takes about 14 kB)"
        )


def _loads(raw: bytes | None, parse: Callable[[bytes], Any] = _std_loads) -> dict[str, Any]:
    if raw is None:
        raise EventError("record has no value")
    try:
        payload = parse(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EventError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _decoding(build: Callable[[dict[str, Any]], Any], record_class: type, what: str, limit: int
              ) -> SharedDecodes:
    """A decoder that refuses a value over ``limit`` bytes, reads it with msgspec straight into
    ``record_class`` and, for any record msgspec refuses, decides with the standard library.

    msgspec checks every field's JSON type against the dataclass's
    annotations (a bool is no int, a float no int; an int is read as a
    float where a float is declared, as the long way does) and then runs the
    class's ``__post_init__``, so an :class:`Order` is validated by the same
    :func:`order_problems` either way. What msgspec accepts, the long way
    accepts too and makes into an equal record; what it refuses (a wrong
    type, a broken rule, JSON it does not read: NaN literals, lone
    surrogates, UTF-16) is decoded again the standard way, so what is
    accepted, and every error message, stay exactly as they were. The fast
    way skips the dicts of ``json.loads`` and the Python type tests over
    them, which were most of a record's decoding.
    """
    if msgspec is None:  # pragma: no cover
        def decode_std(raw: bytes | None) -> Any:
            check_size(raw, what, limit)
            return build(_loads(raw))

        return SharedDecodes(decode_std)

    typed = msgspec.json.Decoder(record_class).decode
    refused = msgspec.DecodeError  # ValidationError (a type, a rule) is one too

    def decode(raw: bytes | None) -> Any:
        """Decode with msgspec; on any refusal decide again with the standard library (same errors)."""
        check_size(raw, what, limit)
        if raw is not None:
            try:
                return typed(raw)
            except refused:
                pass
        return build(_loads(raw))

    return SharedDecodes(decode)


def _read(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], problems: list[str]) -> Any:
    """``payload[name]`` if it is a ``kind`` (a bool is no number); else ``_UNREAD``, with the problem listed."""
    if name not in payload:
        problems.append(f"field {name!r} is missing")
        return _UNREAD
    value = payload[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        problems.append(f"field {name!r} has the wrong type ({type(value).__name__})")
        return _UNREAD
    return value


def order_from_dict(payload: dict[str, Any]) -> Order:
    """An :class:`Order` from decoded JSON, validated; one :class:`EventError` lists every problem.

    Well-formed input takes a short path of exact type tests (the consumers'
    hot path); anything else (a missing field, a wrong type, a bool for an
    int) goes the long way, which reads every field it can and words the error.
    """
    try:
        raw_items = payload["items"]
        if type(raw_items) is list and all(type(raw) is dict for raw in raw_items):
            items = tuple(
                LineItem(raw["sku"], raw["name"], raw["quantity"], raw["unit_price_cents"]) for raw in raw_items
            )
            if all(type(i.sku) is str and type(i.name) is str and type(i.quantity) is int and type(i.unit_price_cents) is int
                   for i in items):
                order_id, customer_id, email = payload["order_id"], payload["customer_id"], payload["customer_email"]
                total, currency, created = payload["total_cents"], payload["currency"], payload["created_at"]
                if (type(order_id) is str and type(customer_id) is str and type(email) is str and type(total) is int
                        and type(currency) is str and (type(created) is float or type(created) is int)):
                    return Order(order_id, customer_id, email, items, total, currency, float(created))
    except KeyError:
        pass
    return _order_from_dict_checked(payload)


def _order_from_dict_checked(payload: dict[str, Any]) -> Order:
    """Every field that cannot be read, then every rule the readable ones break, in one error."""
    problems: list[str] = []
    order_id = _read(payload, "order_id", str, problems)
    customer_id = _read(payload, "customer_id", str, problems)
    # no address at all is the rule "customer_email is missing", not a JSON field problem
    email = "" if payload.get("customer_email") is None else _read(payload, "customer_email", str, problems)
    raw_items = _read(payload, "items", list, problems)
    items = _UNREAD if raw_items is _UNREAD else tuple(_read_item(raw, n, problems) for n, raw in enumerate(raw_items, 1))
    total = _read(payload, "total_cents", int, problems)
    currency = _read(payload, "currency", str, problems)
    created = _read(payload, "created_at", (int, float), problems)
    problems += order_problems(order_id, customer_id, email, items, total, currency, created)
    if problems:
        raise EventError(describe_problems(order_id, problems))
    return Order(order_id, customer_id, email, items, total, currency, float(created))


_ITEM_FIELDS: tuple[tuple[str, type], ...] = (("sku", str), ("name", str), ("quantity", int), ("unit_price_cents", int))


def _read_item(raw: Any, number: int, problems: list[str]) -> Any:
    """The ``number``-th line item (from 1), or ``_UNREAD`` with its problems listed."""
    if not isinstance(raw, dict):
        problems.append(f"item {number} is not a JSON object ({type(raw).__name__})")
        return _UNREAD
    found: list[str] = []
    values = [_read(raw, name, kind, found) for name, kind in _ITEM_FIELDS]
    if found:
        problems.extend(f"item {number}: {problem}" for problem in found)
        return _UNREAD
    return LineItem(*values)


def _confirmed_from_dict(payload: dict[str, Any]) -> ConfirmedOrder:
    order, payment_id, confirmed_at = payload.get("order"), payload.get("payment_id"), payload.get("confirmed_at")
    if type(order) is dict and type(payment_id) is str and (type(confirmed_at) is float or type(confirmed_at) is int):
        return ConfirmedOrder(order_from_dict(order), payment_id, float(confirmed_at))
    order, payment_id, confirmed_at = _outcome_fields(payload, "confirmed order", "payment_id", "confirmed_at")
    return ConfirmedOrder(order, payment_id, float(confirmed_at))


def _declined_from_dict(payload: dict[str, Any]) -> DeclinedOrder:
    order, reason, declined_at = payload.get("order"), payload.get("reason"), payload.get("declined_at")
    if type(order) is dict and type(reason) is str and (type(declined_at) is float or type(declined_at) is int):
        return DeclinedOrder(order_from_dict(order), reason, float(declined_at))
    order, reason, declined_at = _outcome_fields(payload, "declined order", "reason", "declined_at")
    return DeclinedOrder(order, reason, float(declined_at))


def _outcome_fields(payload: dict[str, Any], what: str, text: str, at: str) -> tuple[Order, str, float]:
    """The order, the text field and the time of a confirmed or declined record; one error lists every problem,
    the record's own fields first (``confirmed order: field 'payment_id' is missing``), then its order's."""
    problems: list[str] = []
    raw_order = _read(payload, "order", dict, problems)
    detail = _read(payload, text, str, problems)
    when = _read(payload, at, (int, float), problems)
    messages = [f"{what}: {'; '.join(problems)}"] if problems else []
    order = _UNREAD
    if raw_order is not _UNREAD:
        try:
            order = order_from_dict(raw_order)
        except EventError as exc:
            messages.append(str(exc))
    if messages:
        raise EventError("; ".join(messages))
    return order, detail, when


class SharedDecodes:
    """A decoder whose records are handed on to the other consumer groups of this process that read the same bytes.

    In the Lab every role runs in one process, and two groups read each of
    order_details (transactions and analytics) and order_confirmed (e-mail
    and analytics). Decoding is a pure function of the bytes and the records
    are frozen, so the first group to read a value decodes it, and the record
    waits here until every other group reading it has taken it; then it is
    dropped. A fixed window of the last 4096 values, before, missed whenever
    the groups were further apart than that: in the bench, where the
    generator runs ahead, 96 % of the reads decoded again, and in a class
    exactly when one role fell behind, which made it fall further behind.

    Nothing is kept while fewer than two groups read (a role in a process of
    its own), and at most ``limit`` records wait (the oldest is dropped, to
    be decoded again by whoever still reads it). Only accepted values are
    kept: a value refused is refused again with the same error every time.
    """

    def __init__(self, decode: Callable[[bytes | None], Any], limit: int = SHARED_DECODES_LIMIT) -> None:
        self._decode = decode
        self._limit = limit
        self._readers: dict[str, int] = {}  # group -> its workers reading now
        self._others = 0  # how many groups besides the one that decodes a value will read it
        self._waiting: OrderedDict[bytes, list[Any]] = OrderedDict()  # value -> [record, reads still to come]
        self._lock = threading.Lock()

    def add_reader(self, group: str) -> None:
        """A worker of ``group`` reads records decoded here (from now until :meth:`remove_reader`)."""
        with self._lock:
            self._readers[group] = self._readers.get(group, 0) + 1
            self._others = len(self._readers) - 1

    def remove_reader(self, group: str) -> None:
        """A worker of ``group`` stopped reading; once none is left, nothing is kept for the group."""
        with self._lock:
            left = self._readers.get(group, 0) - 1
            if left > 0:
                self._readers[group] = left
            else:
                self._readers.pop(group, None)
            self._others = max(0, len(self._readers) - 1)
            if not self._others:
                self._waiting.clear()

    @property
    def waiting(self) -> int:
        """Records decoded and not yet taken by every group."""
        return len(self._waiting)

    def __call__(self, raw: bytes | None) -> Any:
        others = self._others
        if not others or type(raw) is not bytes:  # None (refused), or a buffer that cannot be a key
            return self._decode(raw)
        waiting = self._waiting
        if others == 1:  # the Lab's case: one pop, atomic under the GIL, takes the record for good
            entry = waiting.pop(raw, None)
            if entry is not None:
                return entry[0]
        else:
            with self._lock:
                entry = waiting.get(raw)
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del waiting[raw]
                    return entry[0]
        record = self._decode(raw)
        waiting[raw] = [record, others]
        if len(waiting) > self._limit:
            try:
                waiting.popitem(last=False)  # the oldest
            except KeyError:  # another thread took the last ones meanwhile
                pass
        return record


_decode_order = _decoding(order_from_dict, Order, "an order", MAX_ORDER_BYTES)
_decode_confirmed = _decoding(_confirmed_from_dict, ConfirmedOrder, "a confirmed order", MAX_OUTCOME_BYTES)
_decode_declined = _decoding(_declined_from_dict, DeclinedOrder, "a declined order", MAX_OUTCOME_BYTES)


def decode_order(raw: bytes | None) -> Order:
    """An order_details record value as an Order; EventError says what is wrong with it."""
    return _decode_order(raw)


def decode_confirmed(raw: bytes | None) -> ConfirmedOrder:
    """An order_confirmed record value as a ConfirmedOrder; EventError says what is wrong."""
    return _decode_confirmed(raw)


def decode_declined(raw: bytes | None) -> DeclinedOrder:
    """An order_declined record value as a DeclinedOrder; EventError says what is wrong."""
    return _decode_declined(raw)


@dataclass(frozen=True)
class RecordType:
    """A kind of record a topic carries: the class it decodes to and its JSON codec.

    Topologies name the record type of every topic a role reads, so a
    consumer decodes each topic with the codec declared for it.
    """

    name: str
    cls: type
    decode: Callable[[bytes | None], Any]
    encode: Callable[[Any], bytes]
    shared: SharedDecodes | None = None  # what ``decode`` hands on between consumer groups (see SharedDecodes)

    def add_reader(self, group: str) -> None:
        """A worker of consumer ``group`` decodes this record type in this process (see :class:`SharedDecodes`)."""
        if self.shared is not None:
            self.shared.add_reader(group)

    def remove_reader(self, group: str) -> None:
        if self.shared is not None:
            self.shared.remove_reader(group)


ORDER = RecordType("order", Order, decode_order, encode_order, _decode_order)
CONFIRMED = RecordType("confirmed order", ConfirmedOrder, decode_confirmed, encode_confirmed, _decode_confirmed)
DECLINED = RecordType("declined order", DeclinedOrder, decode_declined, encode_declined, _decode_declined)
