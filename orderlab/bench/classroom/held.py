"""Whether a step of the classroom run was held, and if not, why, in words.

Pure: the step's rates over its window in, the shortfalls out.
"""

from __future__ import annotations

from typing import Mapping

from ...ui.bottleneck import role_word

SHARE = 0.97  # settled of placed, e-mailed of confirmed, placed of asked
LAG_GROWTH_SHARE = 0.01  # of the rate: a group's lag may grow this fast and the step still count as held
# A group's lag moves a batch at a time (a fetch of 64 kB or 50 ms, committed when its work is done), so a lag
# that grew by less than 100 records over the whole window is jitter, not falling behind: at low rates and in
# short holds 1 % of the rate is a fraction of a batch (1/s at 100/s: 30 records over 30 s, 5 over a 5 s window).
BATCH_RECORDS = 100.0


def shortfalls(rate: float, *, placed_per_s: float, settled_per_s: float, confirmed_per_s: float,
               emailed_per_s: float, lag_growth_per_s: Mapping[str, float], window_s: float) -> tuple[str, ...]:
    """Every way the step at ``rate`` fell short; an empty tuple means it was held.

    Held: the orders role placed at least 97 % of the rate asked, settled is
    at least 97 % of placed, e-mailed at least 97 % of confirmed, and no
    group's lag grew by more than 1 % of the rate, or by more than one
    batch (:data:`BATCH_RECORDS`) over the ``window_s`` seconds judged when
    that is more.
    """
    found: list[str] = []
    if placed_per_s < SHARE * rate:
        found.append(f"placed {placed_per_s:,.0f}/s of the {rate:,.0f}/s asked")
    if settled_per_s < SHARE * placed_per_s:
        found.append(f"settled {settled_per_s:,.0f}/s of {placed_per_s:,.0f}/s placed")
    if emailed_per_s < SHARE * confirmed_per_s:
        found.append(f"e-mailed {emailed_per_s:,.0f}/s of {confirmed_per_s:,.0f}/s confirmed")
    bound = max(LAG_GROWTH_SHARE * rate, BATCH_RECORDS / window_s if window_s > 0 else 0.0)
    for group, per_s in sorted(lag_growth_per_s.items()):
        if per_s > bound:
            found.append(f"{role_word(group)} falls behind by {per_s:,.0f}/s: its lag grows")
    return tuple(found)
