"""The records that travel between the roles.

Money is integer cents (floats cannot add up prices exactly). Every record
encodes to compact JSON and decodes with validation; anything wrong raises
:class:`EventError` with the reason, which the consumers copy into the
dead-letter topic's headers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

try:  # optional: about five times faster than the standard library, same JSON
    import orjson
except ImportError:  # pragma: no cover - exercised when orjson is not installed
    orjson = None  # type: ignore[assignment]

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


class EventError(ValueError):
    """A record is not a valid orderlab event; the message says why."""


@dataclass(frozen=True)
class LineItem:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    customer_email: str
    items: tuple[LineItem, ...]
    total_cents: int
    currency: str
    created_at: float  # unix seconds

    def __post_init__(self) -> None:
        validate_order(self)

    @property
    def item_count(self) -> int:
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
    order: Order
    payment_id: str
    confirmed_at: float


@dataclass(frozen=True)
class DeclinedOrder:
    order: Order
    reason: str
    declined_at: float


# -- validation ---------------------------------------------------------------

def validate_order(order: Order) -> None:
    if not isinstance(order.order_id, str) or not order.order_id:
        raise EventError("order_id is missing")
    if not isinstance(order.customer_id, str) or not order.customer_id:
        raise EventError(f"order {order.order_id}: customer_id is missing")
    validate_email(order.customer_email, order.order_id)
    if order.currency not in CURRENCIES:
        raise EventError(f"order {order.order_id}: unknown currency {order.currency!r} (known: {', '.join(CURRENCIES)})")
    if not order.items:
        raise EventError(f"order {order.order_id}: has no items")
    if len(order.items) > MAX_ITEMS:
        raise EventError(f"order {order.order_id}: more than {MAX_ITEMS} line items")
    for item in order.items:
        if not isinstance(item.quantity, int) or isinstance(item.quantity, bool):
            raise EventError(f"order {order.order_id}: quantity of {item.sku} is not a whole number")
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise EventError(f"order {order.order_id}: quantity of {item.sku} must be 1..{MAX_QUANTITY}, got {item.quantity}")
        if not isinstance(item.unit_price_cents, int) or item.unit_price_cents <= 0:
            raise EventError(f"order {order.order_id}: price of {item.sku} must be a positive number of cents")
    expected = sum(item.total_cents for item in order.items)
    if order.total_cents != expected:
        raise EventError(
            f"order {order.order_id}: total_cents {order.total_cents} does not match its items ({expected})"
        )
    if not isinstance(order.created_at, (int, float)) or not 0 < order.created_at < math.inf:  # also refuses NaN
        raise EventError(f"order {order.order_id}: created_at must be a positive unix time")


def validate_email(address: Any, order_id: str = "?") -> None:
    if not isinstance(address, str) or not address:
        raise EventError(f"order {order_id}: customer_email is missing")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise EventError(f"order {order_id}: customer_email {address!r} is not an e-mail address")
    if domain.lower() not in RESERVED_EMAIL_DOMAINS:
        raise EventError(
            f"order {order_id}: customer_email must be at a reserved demo domain "
            f"({', '.join(RESERVED_EMAIL_DOMAINS)}), got {domain!r}"
        )


# -- JSON ---------------------------------------------------------------------

def _order_dict(order: Order) -> dict[str, Any]:
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


if orjson is not None:
    def _dumps(payload: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(payload)
        except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
            return _std_dumps(payload)

    _fast_loads: Callable[[bytes], Any] = orjson.loads
else:  # pragma: no cover
    _dumps = _std_dumps
    _fast_loads = _std_loads


def encode_order(order: Order) -> bytes:
    return _dumps(_order_dict(order))


def encode_confirmed(record: ConfirmedOrder) -> bytes:
    return _dumps({"order": _order_dict(record.order), "payment_id": record.payment_id, "confirmed_at": record.confirmed_at})


def encode_declined(record: DeclinedOrder) -> bytes:
    return _dumps({"order": _order_dict(record.order), "reason": record.reason, "declined_at": record.declined_at})


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
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError, orjson's too
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EventError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _decoding(build: Callable[[dict[str, Any]], Any], what: str, limit: int) -> Callable[[bytes | None], Any]:
    """A decoder that refuses a value over ``limit`` bytes, parses with orjson and, for any record it
    would refuse, decides with the standard library.

    orjson and ``json`` disagree only on odd input (NaN literals, lone
    surrogates, integers beyond 64 bits, which orjson reads as floats); a
    record that fails on the fast path is parsed again the standard way, so
    what is accepted, and every error message, stay exactly as they were.
    """
    if _fast_loads is _std_loads:  # pragma: no cover - no orjson
        def decode_std(raw: bytes | None) -> Any:
            check_size(raw, what, limit)
            return build(_loads(raw))

        return decode_std

    def decode(raw: bytes | None) -> Any:
        check_size(raw, what, limit)
        try:
            return build(_loads(raw, _fast_loads))
        except EventError:
            return build(_loads(raw))

    return decode


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str = "order") -> Any:
    if name not in payload:
        raise EventError(f"{where}: field {name!r} is missing")
    value = payload[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise EventError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def order_from_dict(payload: dict[str, Any]) -> Order:
    """An :class:`Order` from decoded JSON, validated; :class:`EventError` says what is wrong.

    Well-formed input takes a short path of exact type tests; anything else
    (a missing field, a wrong type, a bool for an int) goes the long way,
    which finds the first problem and words the error.
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
    raw_items = _field(payload, "items", list)
    items = []
    for raw in raw_items:
        if not isinstance(raw, dict):
            raise EventError("order: every item must be a JSON object")
        items.append(
            LineItem(
                sku=_field(raw, "sku", str, "item"),
                name=_field(raw, "name", str, "item"),
                quantity=_field(raw, "quantity", int, "item"),
                unit_price_cents=_field(raw, "unit_price_cents", int, "item"),
            )
        )
    return Order(
        order_id=_field(payload, "order_id", str),
        customer_id=_field(payload, "customer_id", str),
        customer_email=_field(payload, "customer_email", str) if payload.get("customer_email") is not None else "",
        items=tuple(items),
        total_cents=_field(payload, "total_cents", int),
        currency=_field(payload, "currency", str),
        created_at=float(_field(payload, "created_at", (int, float))),
    )


def _confirmed_from_dict(payload: dict[str, Any]) -> ConfirmedOrder:
    return ConfirmedOrder(
        order=order_from_dict(_field(payload, "order", dict, "confirmed order")),
        payment_id=_field(payload, "payment_id", str, "confirmed order"),
        confirmed_at=float(_field(payload, "confirmed_at", (int, float), "confirmed order")),
    )


def _declined_from_dict(payload: dict[str, Any]) -> DeclinedOrder:
    return DeclinedOrder(
        order=order_from_dict(_field(payload, "order", dict, "declined order")),
        reason=_field(payload, "reason", str, "declined order"),
        declined_at=float(_field(payload, "declined_at", (int, float), "declined order")),
    )


_decode_order = _decoding(order_from_dict, "an order", MAX_ORDER_BYTES)
_decode_confirmed = _decoding(_confirmed_from_dict, "a confirmed order", MAX_OUTCOME_BYTES)
_decode_declined = _decoding(_declined_from_dict, "a declined order", MAX_OUTCOME_BYTES)


def decode_order(raw: bytes | None) -> Order:
    return _decode_order(raw)


def decode_confirmed(raw: bytes | None) -> ConfirmedOrder:
    return _decode_confirmed(raw)


def decode_declined(raw: bytes | None) -> DeclinedOrder:
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


ORDER = RecordType("order", Order, decode_order, encode_order)
CONFIRMED = RecordType("confirmed order", ConfirmedOrder, decode_confirmed, encode_confirmed)
DECLINED = RecordType("declined order", DeclinedOrder, decode_declined, encode_declined)
