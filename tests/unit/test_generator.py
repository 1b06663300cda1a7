from collections import Counter

import pytest

from orderlab.catalogue import CATALOGUE, Product
from orderlab.events import RESERVED_EMAIL_DOMAINS
from orderlab.generator import POPULARITY, OrderFactory, TokenBucket, popularity_weights


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_paces_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock)
    taken = 0
    for _ in range(1000):  # 10 simulated seconds in 10 ms steps
        clock.now += 0.01
        taken += bucket.take()
    assert 995 <= taken <= 1000


def test_rate_change_applies_from_the_change():
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock)
    clock.now = 1.0
    first = bucket.take()
    bucket.set_rate(1000)
    total = 0
    for _ in range(100):
        clock.now += 0.01
        total += bucket.take()
    assert first == 1  # burst caps at max(1, rate/10) tokens at 10/s
    assert 990 <= total <= 1000


def test_zero_rate_places_nothing_and_waits_forever():
    clock = FakeClock()
    bucket = TokenBucket(0, clock=clock)
    clock.now = 100
    assert bucket.take() == 0
    assert bucket.seconds_until_next() == float("inf")


def test_take_respects_most():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock)
    clock.now = 1
    assert bucket.take(most=3) == 3


def test_negative_rate_is_refused():
    with pytest.raises(ValueError, match="rate must be >= 0"):
        TokenBucket(-1)


def test_factory_makes_valid_orders_at_reserved_domains():
    factory = OrderFactory(seed=7, customers=20)
    orders = [factory.make() for _ in range(200)]
    assert len({order.order_id for order in orders}) == 200
    assert all(order.customer_email.rsplit("@", 1)[1] in RESERVED_EMAIL_DOMAINS for order in orders)
    assert all(order.total_cents == sum(i.quantity * i.unit_price_cents for i in order.items) for order in orders)


def test_a_seed_makes_the_same_orders_again():
    first, second = OrderFactory(seed=7, customers=20), OrderFactory(seed=7, customers=20)
    assert [first.make(now=1.0) for _ in range(50)] == [second.make(now=1.0) for _ in range(50)]


def test_an_order_has_one_to_four_different_products_and_one_to_three_units_of_each():
    factory = OrderFactory(seed=5, customers=5)
    orders = [factory.make() for _ in range(2000)]
    assert {len(order.items) for order in orders} == {1, 2, 3, 4}
    assert all(len({item.sku for item in order.items}) == len(order.items) for order in orders)
    assert {item.quantity for order in orders for item in order.items} == {1, 2, 3}
    assert max(order.item_count for order in orders) <= 12


def test_popular_products_sell_most_and_every_product_sells():
    factory = OrderFactory(seed=3, customers=5)
    units: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    for _ in range(3000):
        for item in factory.make().items:
            units[item.sku] += item.quantity
            revenue[item.sku] += item.total_cents
    assert set(units) == {product.sku for product in CATALOGUE}
    assert units.most_common(1)[0][0] == POPULARITY[0] and units[POPULARITY[0]] > 4 * units[POPULARITY[-1]]
    assert revenue.most_common(1)[0][0] != units.most_common(1)[0][0]  # the best seller by units is not by revenue


def test_popularity_weights_rank_by_the_order_and_rank_unnamed_products_last():
    weights = dict(zip((p.sku for p in CATALOGUE), popularity_weights(CATALOGUE)))
    assert [weights[sku] for sku in POPULARITY] == [1 / rank for rank in range(1, len(POPULARITY) + 1)]
    own = (Product("ZZ-1", "Widget", 100), Product("MN-003", "Monitor", 200), Product("ZZ-2", "Gadget", 300))
    assert popularity_weights(own, exponent=2.0) == [1 / 4, 1.0, 1 / 9]  # the named one first, then catalogue order
    with pytest.raises(ValueError, match="at least 4 products"):
        OrderFactory(customers=1, catalogue=own)


def test_order_ids_are_the_text_of_version_4_uuids():
    import random
    import uuid

    from orderlab.generator import uuid4_text

    rng = random.Random(11)
    for bits in [0, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
