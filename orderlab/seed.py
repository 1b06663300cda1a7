"""``seed``: the shop's four roles, as lessons 01-08 run them.

```
 order source ──► OrdersBackend ──► [order_details] ──┬─► TransactionsBackend ──► [order_confirmed] ──► EmailNotifier ──► SMTP
                                                      │        └──► [order_declined]
                                                      └─► AnalyticsBackend ◄── both outcomes ──► rolling aggregates, charts
```

Adding a role is a module with its class and one entry in ``roles`` below
(or, for a system of its own, a topology declared beside this one and named
in ``orderlab.topology.TOPOLOGIES``).
"""

from __future__ import annotations

from .events import CONFIRMED, DECLINED, ORDER
from .services import AnalyticsBackend, EmailNotifier, OrdersBackend, TransactionsBackend
from .topology import Read, Resource, RoleSpec, TopicSpec, Topology

SEED = Topology(
    name="seed",
    topics=(TopicSpec("order_details"), TopicSpec("order_confirmed"), TopicSpec("order_declined")),
    roles=(
        RoleSpec(
            "orders", OrdersBackend, writes=("order_details",),
            summary="puts every placed order on order_details, keyed by order id",
            outside_in="generator, order form, CLI",
        ),
        RoleSpec(
            "transactions", TransactionsBackend, reads=(Read("order_details", ORDER),),
            writes=("order_confirmed", "order_declined"), scales=True,
            needs=frozenset({Resource.LEDGER, Resource.PAYMENT_CONTROLS}),
            summary="takes payment (simulated), once per order id, and writes the outcome",
        ),
        RoleSpec(
            "email", EmailNotifier, reads=(Read("order_confirmed", CONFIRMED),), scales=True,
            needs=frozenset({Resource.LEDGER, Resource.SMTP}),
            summary="e-mails the customer of each confirmed order, once per order id",
            outside_out="SMTP",
        ),
        RoleSpec(
            "analytics", AnalyticsBackend,
            reads=(Read("order_details", ORDER), Read("order_confirmed", CONFIRMED), Read("order_declined", DECLINED)),
            summary="keeps rolling aggregates of orders and outcomes",
            outside_out="rolling aggregates, charts",
        ),
    ),
)
