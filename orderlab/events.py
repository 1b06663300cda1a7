"""The records that travel between the roles.

Money is integer cents (floats cannot add up prices exactly). Every record
encodes to compact JSON and decodes with validation; anything wrong raises
:class:`EventError` with the reason, which the consumers copy into the
dead-letter topic's headers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

CURRENCIES = ("EUR", "USD", "GBP")
# Customers' addresses must be at a reserved domain (RFC 2606), so the demo can
# never e-mail a real person even if pointed at a real SMTP server.
RESERVED_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
MAX_ITEMS = 50
MAX_QUANTITY = 100


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
    if not isinstance(order.created_at, (int, float)) or order.created_at <= 0:
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


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def encode_order(order: Order) -> bytes:
    return _dumps(_order_dict(order))


def encode_confirmed(record: ConfirmedOrder) -> bytes:
    return _dumps({"order": _order_dict(record.order), "payment_id": record.payment_id, "confirmed_at": record.confirmed_at})


def encode_declined(record: DeclinedOrder) -> bytes:
    return _dumps({"order": _order_dict(record.order), "reason": record.reason, "declined_at": record.declined_at})


def _loads(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise EventError("record has no value")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EventError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str = "order") -> Any:
    if name not in payload:
        raise EventError(f"{where}: field {name!r} is missing")
    value = payload[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise EventError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def order_from_dict(payload: dict[str, Any]) -> Order:
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


def decode_order(raw: bytes | None) -> Order:
    return order_from_dict(_loads(raw))


def decode_confirmed(raw: bytes | None) -> ConfirmedOrder:
    payload = _loads(raw)
    return ConfirmedOrder(
        order=order_from_dict(_field(payload, "order", dict, "confirmed order")),
        payment_id=_field(payload, "payment_id", str, "confirmed order"),
        confirmed_at=float(_field(payload, "confirmed_at", (int, float), "confirmed order")),
    )


def decode_declined(raw: bytes | None) -> DeclinedOrder:
    payload = _loads(raw)
    return DeclinedOrder(
        order=order_from_dict(_field(payload, "order", dict, "declined order")),
        reason=_field(payload, "reason", str, "declined order"),
        declined_at=float(_field(payload, "declined_at", (int, float), "declined order")),
    )
