"""Synthetic orders at a target rate.

:class:`TokenBucket` decides how many orders are due (pure, with an
injectable clock, so pacing is tested without waiting); :class:`OrderFactory`
makes realistic orders from a pool of Faker customers and the catalogue,
where some products sell far more often than others (:func:`popularity_weights`).
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

from .catalogue import CATALOGUE, Product
from .events import LineItem, Order


class TokenBucket:
    """Tokens accrue at ``rate`` per second up to ``burst``; each order takes one.

    The rate can change while running: tokens earned so far are kept, and the
    new rate applies from the moment of the change.
    """

    def __init__(self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = 0.0
        self._burst_setting = burst
        self._tokens = 0.0
        self._last = clock()
        self.set_rate(rate)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        # a tenth of a second of orders, at least one: smooth, yet a slow
        # scheduler tick does not lose orders at high rates
        return self._burst_setting if self._burst_setting is not None else max(1.0, self._rate / 10)

    def set_rate(self, rate: float) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0 orders/s, got {rate}")
        with self._lock:
            self._refill()
            self._rate = float(rate)
            self._tokens = min(self._tokens, self.burst)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self._rate)
        self._last = now

    def take(self, most: int | None = None) -> int:
        """Take every whole token available (at most ``most``); returns how many."""
        with self._lock:
            self._refill()
            count = int(self._tokens)
            if most is not None:
                count = min(count, most)
            self._tokens -= count
            return count

    def seconds_until_next(self) -> float:
        with self._lock:
            self._refill()
            if self._rate <= 0:
                return float("inf")
            return max(0.0, (1.0 - self._tokens) / self._rate)


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    email: str


def make_customers(count: int, seed: int | None = None) -> list[Customer]:
    """A pool of customers with Faker names and addresses at example.com."""
    from faker import Faker  # imported here: Faker takes a moment to load

    fake = Faker()
    if seed is not None:
        Faker.seed(seed)
    customers = []
    for number in range(count):
        name = fake.name()
        local = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")
        customers.append(Customer(f"cust-{number:05d}", name, f"{local}.{number}@example.com"))
    return customers


# Best sellers first. With weights 1/rank (Zipf's law, which shop sales
# roughly follow) the mouse sells about twice as often as the monitor and
# twelve times as often as the chair: the best-sellers chart is a slope, not
# a wall, and the best seller by units (the mouse) is not the best seller by
# revenue (the monitor).
POPULARITY: tuple[str, ...] = (
    "MS-002", "MN-003", "CB-007", "KB-001", "HD-004", "WC-005", "LS-008", "SD-009", "MP-010", "DK-006", "LT-011", "CH-012",
)
ZIPF_EXPONENT = 1.0
LINE_COUNTS = (1, 1, 2, 2, 3, 4)  # different products per order: one to four
QUANTITIES = (1, 1, 1, 2, 3)  # units of each product: one to three


def popularity_weights(catalogue: Sequence[Product], order: Sequence[str] = POPULARITY,
                       exponent: float = ZIPF_EXPONENT) -> list[float]:
    """A weight per product of ``catalogue``: ``1 / rank ** exponent``, ranked by ``order``.

    Products ``order`` does not name rank after those it does, in catalogue
    order, so a catalogue of one's own still gets uneven weights.
    """
    named = {sku: rank for rank, sku in enumerate(order)}
    ranked = sorted(range(len(catalogue)), key=lambda i: (named.get(catalogue[i].sku, len(named)), i))
    weights = [0.0] * len(catalogue)
    for rank, index in enumerate(ranked, start=1):
        weights[index] = 1.0 / rank**exponent
    return weights


# The bits uuid.UUID(int=..., version=4) sets: the RFC 4122 variant and version 4.
_UUID4_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for a 128-bit ``bits``, written directly.

    The same text, without making a UUID object on the way (which checks
    its arguments and sets its attributes one by one): half the time, for
    every order the generator makes.
    """
    digits = "%032x" % (bits & _UUID4_KEEP | _UUID4_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class OrderFactory:
    """Makes orders: a random customer; one to four different products, the popular ones more often; one to three units of each.

    An order therefore holds 1 to 12 units (``Order.item_count``) in 1 to 4
    line items. Seeded, the same orders come out in the same sequence.
    """

    def __init__(self, *, seed: int | None = None, customers: int = 500, catalogue: tuple[Product, ...] = CATALOGUE) -> None:
        if len(catalogue) < max(LINE_COUNTS):
            raise ValueError(f"a catalogue needs at least {max(LINE_COUNTS)} products, got {len(catalogue)}")
        self._rng = random.Random(seed)
        self._catalogue = catalogue
        self._cumulative = list(itertools.accumulate(popularity_weights(catalogue)))
        self.customers = make_customers(customers, seed)
        self._lock = threading.Lock()
        # every line an order can have, made once: line items are frozen, so orders share them, and making
        # one (a frozen dataclass sets its fields one by one) cost more than the rest of drawing an order
        self._lines = {(index, quantity): LineItem(product.sku, product.name, quantity, product.price_cents)
                       for index, product in enumerate(catalogue) for quantity in set(QUANTITIES)}

    def _pick_indices(self, count: int) -> list[int]:
        """The catalogue positions of ``count`` different products, each drawn by weight
        (a repeat is drawn again: rare, and cheaper than re-weighting)."""
        cumulative, last = self._cumulative, len(self._cumulative) - 1
        total, draw = cumulative[-1], self._rng.random
        picked: list[int] = []
        while len(picked) < count:
            index = min(bisect.bisect_right(cumulative, draw() * total), last)
            if index not in picked:
                picked.append(index)
        return picked

    def make(self, now: float | None = None) -> Order:
        with self._lock:  # random.Random is not safe to share between threads
            customer = self._rng.choice(self.customers)
            picked = self._pick_indices(self._rng.choice(LINE_COUNTS))
            quantities = [self._rng.choice(QUANTITIES) for _ in picked]
            order_id = uuid4_text(self._rng.getrandbits(128))
        lines = self._lines
        items = [lines[index, quantity] for index, quantity in zip(picked, quantities)]
        return Order.create(order_id, customer.customer_id, customer.email, items, "EUR", now)
