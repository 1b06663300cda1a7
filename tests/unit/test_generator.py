import pytest

from orderlab.events import RESERVED_EMAIL_DOMAINS
from orderlab.generator import OrderFactory, TokenBucket


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
