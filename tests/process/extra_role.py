"""A role a contributor adds: one module with its class and one topology entry.

``CurrencyCounter`` counts the confirmed orders per currency. Nothing else
in orderlab is edited for it: the Lab runs it with ``Lab(topology=TOPOLOGY)``
and ``orderlab run currency`` runs it as a process with
``ORDERLAB_TOPOLOGY=extra_role:TOPOLOGY`` (this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

from typing import Any

from orderlab.events import CONFIRMED, CURRENCIES, ConfirmedOrder
from orderlab.seed import SEED
from orderlab.services import ConsumerService
from orderlab.services.records import Received
from orderlab.topology import Read, RoleSpec


class CurrencyCounter(ConsumerService[ConfirmedOrder]):
    """Counts ``order_confirmed`` records per currency (a counter per currency code)."""

    counter_names = CURRENCIES

    def process(self, batch: list[Received[ConfirmedOrder]]) -> list[Any]:
        for received in batch:
            self.counters.add(received.event.order.currency)
        return []


TOPOLOGY = SEED.with_role(
    RoleSpec("currency", CurrencyCounter, reads=(Read("order_confirmed", CONFIRMED),),
             summary="counts confirmed orders per currency", outside_out="counters"),
    name="seed+currency",
)
