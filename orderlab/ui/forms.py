"""The order form: pick items, a quantity and an e-mail address, press Place.

:func:`order_payload` (pure) builds the dict the Orders Backend accepts;
:class:`OrderForm` is the widget over it. Whatever goes wrong (the lab is
not running, an address outside the demo domains) shows as one line under
the button: an invalid order is refused by the Orders Backend and lands on
the dead-letter topic with its reason, it never raises into the cell.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any, Iterable

import ipywidgets as widgets

from ..catalogue import BY_SKU, CATALOGUE
from ..mail import money


class FormError(ValueError):
    """The form's input cannot become an order (for example an unknown SKU)."""


def order_payload(
    skus: Iterable[str],
    quantity: int,
    email: str,
    *,
    customer_id: str = "web-customer",
    order_id: str | None = None,
    currency: str = "EUR",
    created_at: float | None = None,
) -> dict[str, Any]:
    """The JSON-able order for ``quantity`` of each SKU (prices from the catalogue).

    Validation beyond the catalogue (e-mail domain, quantity limits) is the
    Orders Backend's job, so the form shows the same reasons a producer would get.
    """
    items = []
    for sku in skus:
        product = BY_SKU.get(sku)
        if product is None:
            raise FormError(f"unknown SKU {sku!r}; known: {', '.join(sorted(BY_SKU))}")
        items.append({"sku": product.sku, "name": product.name, "quantity": quantity, "unit_price_cents": product.price_cents})
    return {
        "order_id": order_id or str(uuid.uuid4()),
        "customer_id": customer_id,
        "customer_email": email,
        "items": items,
        "total_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
        "currency": currency,
        "created_at": time.time() if created_at is None else created_at,
    }


class OrderForm:
    """A widget form that places orders on a running :class:`~orderlab.lab.Lab`."""

    def __init__(self, lab: Any, *, email: str = "student@example.com", id_prefix: str = "web") -> None:
        self.lab = lab
        self._numbers = itertools.count(1)
        self.id_prefix = id_prefix
        self.items = widgets.SelectMultiple(
            options=[(f"{p.name} ({money(p.price_cents, 'EUR')})", p.sku) for p in CATALOGUE],
            value=(CATALOGUE[0].sku,),
            rows=6,
            description="items",
        )
        self.quantity = widgets.BoundedIntText(value=1, min=1, max=1000, description="quantity")
        self.email = widgets.Text(value=email, description="e-mail")
        self.place_button = widgets.Button(description="Place order", button_style="primary", icon="shopping-cart")
        self.result = widgets.Label(value="")
        self.place_button.on_click(lambda _button: self.place())
        self.widget = widgets.VBox(
            [widgets.HBox([self.items, widgets.VBox([self.quantity, self.email, self.place_button])]), self.result]
        )
        self.widget.add_class("orderlab-order-form")
        self.placed: list[Any] = []

    def next_order_id(self) -> str:
        """Readable, unique within this form: ``web-0001-1a2b3c4d``."""
        return f"{self.id_prefix}-{next(self._numbers):04d}-{uuid.uuid4().hex[:8]}"

    def place(self) -> Any:
        """Place the order the form shows; returns the Orders Backend's answer (or None on an error)."""
        try:
            payload = order_payload(self.items.value, self.quantity.value, self.email.value.strip(), order_id=self.next_order_id())
            if not payload["items"]:
                raise FormError("pick at least one item")
            outcome = self.lab.place(payload)
        except Exception as exc:  # noqa: BLE001 - one line in the form, never a traceback
            self.result.value = f"not placed: {exc}"
            return None
        self.placed.append(outcome)
        if outcome.accepted:
            self.result.value = f"placed {outcome.order_id}: {money(payload['total_cents'], payload['currency'])}"
        else:
            self.result.value = f"refused (sent to the dead-letter topic): {outcome.reason}"
        return outcome

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "Order form: items, quantity, e-mail and a Place button (run the notebook to use it)"
        return bundle
