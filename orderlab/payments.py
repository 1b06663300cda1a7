"""The payment simulation, as pure functions: tests call them without Kafka."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from .events import Order, PaymentResult

DECLINE_REASONS = ("insufficient_funds", "card_expired", "suspected_fraud")
# Orders above this are always declined: a rule a student can see in the data.
CARD_LIMIT_CENTS = 500_000


@dataclass(frozen=True)
class PaymentRules:
    decline_probability: float = 0.1
    card_limit_cents: int = CARD_LIMIT_CENTS

    def __post_init__(self) -> None:
        if not 0.0 <= self.decline_probability <= 1.0:
            raise ValueError(f"decline probability must be between 0 and 1, got {self.decline_probability}")


def decide_payment(order: Order, rules: PaymentRules, rng: random.Random, now: float | None = None) -> PaymentResult:
    """Approve or decline one order."""
    processed_at = time.time() if now is None else now
    # the first 16 hex digits of a random 128-bit UUID, as uuid.UUID(int=...).hex[:16] gave them
    # (the same ids from the same seed), without making the UUID object: 3 % of the pipeline's time
    payment_id = "pay_%016x" % (rng.getrandbits(128) >> 64)
    if order.total_cents > rules.card_limit_cents:
        return PaymentResult(order.order_id, False, "over_card_limit", payment_id, processed_at)
    if rng.random() < rules.decline_probability:
        return PaymentResult(order.order_id, False, rng.choice(DECLINE_REASONS), payment_id, processed_at)
    return PaymentResult(order.order_id, True, "approved", payment_id, processed_at)
