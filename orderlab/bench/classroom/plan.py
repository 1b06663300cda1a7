"""The classroom run's plan: which rates the slider is moved to, and how long each is held."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from ...limits import MAX_RATE

BASE_STEPS = (100, 250, 500, 1000, 1500, 2000)  # orders/s, a teacher's round numbers
NEAR_BARE = (0.8, 0.9, 1.0, 1.1)  # finer steps around the rate the classroom is judged against, as fractions of it
SLIDER_STEP = 10  # the rate slider moves in tens
CLOSE = 0.03  # two steps closer than this (relative) are one
HOLD_S = 60.0  # how long the slider stays at each step, by default
WINDOW_S = 30.0  # a step is judged on its last 30 s; a shorter hold, on its second half
MIN_HOLD_S = 4.0  # fewer seconds hold too few of the control room's one-a-second samples for a lag slope


def ladder(bare_per_s: float, top: int = MAX_RATE, base: Sequence[int] = BASE_STEPS) -> tuple[int, ...]:
    """The rates to try, lowest first: ``base`` and finer steps near ``min(bare_per_s, top)``, none above ``top``.

    Where the classroom falls short of the bare pipeline, or of the slider's
    top when the bare pipeline goes faster, is what ``classroom_vs_bare``
    measures, so the steps are closest there; a bare rate that is not a
    number (the pipeline run failed) leaves the base steps alone.
    """
    rates = {rate for rate in base if 0 < rate <= top}
    if math.isfinite(bare_per_s) and bare_per_s > 0:
        judged_against = min(bare_per_s, top)
        rates |= {int(round(share * judged_against / SLIDER_STEP)) * SLIDER_STEP for share in NEAR_BARE}
    kept: list[int] = []
    for rate in sorted(rate for rate in rates if SLIDER_STEP <= rate <= top):
        if kept and rate - kept[-1] <= CLOSE * kept[-1]:
            continue
        kept.append(rate)
    return tuple(kept)


@dataclass(frozen=True)
class ClassroomPlan:
    """How the run goes: the bare pipeline's orders, then each step of the slider held ``settle_s + window_s``.

    Every figure of a step is measured over its last ``window_s`` seconds:
    the first ``settle_s`` let the pipeline find its pace after the move.
    """

    bare_orders: int
    settle_s: float
    window_s: float
    warm_s: float  # the panel runs at its first cell's rate this long before the first step
    poll_s: float  # how often the kernel is read during a window (the e-mail latencies it keeps are bounded)
    quick: bool
    fixed_steps: tuple[int, ...] = ()  # these rates instead of the ladder from the bare rate

    @classmethod
    def standard(cls) -> "ClassroomPlan":
        return cls(bare_orders=20_000, settle_s=HOLD_S - WINDOW_S, window_s=WINDOW_S, warm_s=15.0, poll_s=4.0, quick=False)

    @classmethod
    def tiny(cls) -> "ClassroomPlan":
        """Two short steps at low rates: checks that the run works end to end, not how fast."""
        return cls(bare_orders=300, settle_s=4.0, window_s=10.0, warm_s=3.0, poll_s=2.0, quick=True, fixed_steps=(50, 100))

    def with_bare_orders(self, orders: int) -> "ClassroomPlan":
        return replace(self, bare_orders=orders)

    def with_hold(self, hold_s: float) -> "ClassroomPlan":
        """Each step held ``hold_s`` seconds: judged on its last :data:`WINDOW_S`, or on its second half when shorter."""
        window_s = min(WINDOW_S, hold_s / 2)
        return replace(self, settle_s=hold_s - window_s, window_s=window_s, poll_s=min(self.poll_s, max(1.0, window_s / 3)))

    def with_steps(self, rates: Sequence[int]) -> "ClassroomPlan":
        """These rates, in this order, instead of the ladder from the bare rate."""
        return replace(self, fixed_steps=tuple(rates))

    @property
    def finds_the_held_rate(self) -> bool:
        """Whether the run climbs the whole ladder, so its highest held step is this machine's.

        A tiny run's figures mean little, and chosen steps (``--steps``) stop
        where the person asked, not where the machine does: neither replaces
        the saved result the control room shows.
        """
        return not self.quick and not self.fixed_steps

    @property
    def step_s(self) -> float:
        return self.settle_s + self.window_s

    def rates(self, bare_per_s: float, top: int = MAX_RATE) -> tuple[int, ...]:
        return self.fixed_steps or ladder(bare_per_s, top)

    def as_dict(self) -> dict[str, Any]:
        return {"bare_orders": self.bare_orders, "hold_s": self.step_s, "settle_s": self.settle_s, "window_s": self.window_s,
                "warm_s": self.warm_s, "quick": self.quick, **({"steps": list(self.fixed_steps)} if self.fixed_steps else {})}
