"""Analytics Backend: reads ``order_details`` (and the payment outcomes) and
keeps rows for rolling aggregates; :mod:`orderlab.aggregates` turns them
into numbers and series."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from ..events import ConfirmedOrder, DeclinedOrder, Order
from ..settings import Settings
from ..topology import RoleSpec
from .consumer import ConsumerService
from .records import Received

if TYPE_CHECKING:
    import pandas as pd


ANALYTICS_FETCH_MIN_BYTES = 64 * 1024
ANALYTICS_FETCH_MAX_WAIT_MS = 100


class AnalyticsBackend(ConsumerService[Any]):
    """Keeps what it reads as rows for the charts: orders, their items and their payment outcomes.

    Extra argument: ``keep``, how many orders (and outcomes) it keeps, the
    oldest dropped first, so a long run's memory stays bounded.
    """

    counter_names = ("orders_seen", "duplicates_seen", "outcomes_seen")

    def __init__(self, settings: Settings, spec: RoleSpec, *, keep: int = 200_000, **options: Any) -> None:
        super().__init__(settings, spec, **options)
        self._lock = threading.Lock()
        self._orders: deque[tuple[str, float, float, int, int]] = deque(maxlen=keep)
        self._items: deque[tuple[str, str, str, int, int]] = deque(maxlen=keep * 2)
        self._outcomes: deque[tuple[str, bool, float, float]] = deque(maxlen=keep)
        # recent order ids, to count a redelivered order (and a confirmation
        # read twice) once; bounded like the rows (a long-running process must
        # not grow without limit). OrderedDicts: a plain dict's oldest key,
        # next(iter(d)), is found by stepping over every key deleted before
        # it, so once full each new id cost more (50 µs at 400k orders seen)
        # and e-mail fell behind at 2000 orders/s in a classroom run
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        self._confirmed_ids: OrderedDict[str, None] = OrderedDict()
        self._seen_limit = keep
        self.revenue_cents = 0  # confirmed orders only: a declined order earned nothing

    def consumer_overrides(self) -> dict[str, Any]:
        """Fewer, fuller fetches: the broker answers once it has 64 kB or after 100 ms.

        Analytics is off the order's path (nothing waits for it but a chart
        redrawn once a second), yet each of its polls costs a fetch and a
        commit request in the process all roles share. Reading every few
        records as they come, it polled about 100 times a second at 1000
        orders/s; this way about ten.
        """
        return {"fetch_min_bytes": ANALYTICS_FETCH_MIN_BYTES, "fetch_max_wait_ms": ANALYTICS_FETCH_MAX_WAIT_MS}

    def process(self, batch: list[Received[Any]]) -> list[Any]:
        """Keep each order once (a redelivered one is counted as a duplicate) and each outcome, with the time it was seen."""
        seen_at = time.time()
        orders_seen = duplicates_seen = outcomes_seen = 0
        with self._lock:
            for received in batch:
                event = received.event
                if isinstance(event, Order):
                    if not self._first_time(self._seen_ids, event.order_id):
                        duplicates_seen += 1
                        continue
                    self._orders.append((event.order_id, event.created_at, seen_at, event.total_cents, event.item_count))
                    for item in event.items:
                        self._items.append((event.order_id, item.sku, item.name, item.quantity, item.total_cents))
                    orders_seen += 1
                elif isinstance(event, ConfirmedOrder):
                    if self._first_time(self._confirmed_ids, event.order.order_id):
                        self.revenue_cents += event.order.total_cents
                    self._outcomes.append((event.order.order_id, True, event.order.created_at, event.confirmed_at))
                    outcomes_seen += 1
                elif isinstance(event, DeclinedOrder):
                    self._outcomes.append((event.order.order_id, False, event.order.created_at, event.declined_at))
                    outcomes_seen += 1
        # once a batch, not once a record: each add takes the counters' lock
        for name, count in (("orders_seen", orders_seen), ("duplicates_seen", duplicates_seen), ("outcomes_seen", outcomes_seen)):
            if count:
                self.counters.add(name, count)
        return []

    def _first_time(self, ids: OrderedDict[str, None], order_id: str) -> bool:
        """Remember ``order_id`` in ``ids`` (the oldest forgotten beyond the limit); False if it was there."""
        if order_id in ids:
            return False
        ids[order_id] = None
        if len(ids) > self._seen_limit:
            ids.popitem(last=False)  # the oldest
        return True

    # -- what the charts read ------------------------------------------------------
    def frames(self) -> tuple["pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]:
        """(orders, items, outcomes) DataFrames of what was seen so far (bounded).

        pandas is imported here, not with the module: every command line
        imports the roles (through the topology), and most never draw a chart.
        """
        import pandas as pd

        from .. import aggregates

        with self._lock:
            orders = list(self._orders)
            items = list(self._items)
            outcomes = list(self._outcomes)
        return (
            pd.DataFrame(orders, columns=aggregates.ORDER_COLUMNS),
            pd.DataFrame(items, columns=aggregates.ITEM_COLUMNS),
            pd.DataFrame(outcomes, columns=aggregates.OUTCOME_COLUMNS),
        )

    def summary(self, window_s: float = 10) -> dict[str, float]:
        """Orders/s, revenue, basket size... over the last ``window_s`` seconds (see :func:`orderlab.aggregates.summary`)."""
        from .. import aggregates

        orders, items, outcomes = self.frames()
        return aggregates.summary(orders, items, outcomes, time.time(), window_s)

    @property
    def orders_seen(self) -> int:
        """Distinct orders seen so far."""
        return self.counters["orders_seen"]
