"""The control room's sentence when a setting cannot be held: who falls behind, and by how much.

It is made from the lag growth the panel measures anyway
(:mod:`orderlab.ui.laggrowth`): a group whose lag grows by 900 records a
second handles 900 a second fewer than are written for it, whatever its lag
is now. And from the rate the orders role really places: a generator that
places 1,500 of the 2,000 a second asked is a bottleneck too.

Pure: figures in, words out, so tests feed it made-up figures.
"""

from __future__ import annotations

from typing import Mapping

# the lag chart's legend spells groups by role name; people read "e-mail"
ROLE_WORDS = {"email": "e-mail"}

# A lag jitters by a batch or two between samples, so a slope of a few records
# a second over a few seconds is noise: a group falls behind when its lag grows
# by more than this share of the rate, and by at least MIN_GROWTH_PER_S.
GROWTH_SHARE = 0.02
MIN_GROWTH_PER_S = 10.0
# the generator falls short when it places less than this share of the rate asked
PLACED_SHARE = 0.9
# fewer seconds of samples than this (since the last change of a knob) say nothing yet
MIN_SECONDS = 8.0


def role_word(group: str) -> str:
    return ROLE_WORDS.get(group, group)


def falling_behind(growth: Mapping[str, float], rate: float) -> list[tuple[str, float]]:
    """The groups whose lag grows faster than noise at ``rate``, fastest first: ``[(group, records/s)]``."""
    bound = max(GROWTH_SHARE * rate, MIN_GROWTH_PER_S)
    behind = [(group, per_s) for group, per_s in growth.items() if per_s > bound]
    return sorted(behind, key=lambda item: (-item[1], item[0]))


def behind_line(growth: Mapping[str, float], rate: float, *, placed_per_s: float | None = None,
                seconds: float = MIN_SECONDS) -> str:
    """``e-mail falls behind by 900/s: its lag grows``, or ``every group keeps up``.

    ``growth`` is each group's lag growth in records/s (short group names),
    ``rate`` the orders/s asked, ``placed_per_s`` what the orders role placed
    over the same ``seconds``. "" while there is nothing to judge: the rate is
    0, or fewer than :data:`MIN_SECONDS` of samples.
    """
    if rate <= 0 or seconds < MIN_SECONDS:
        return ""
    parts: list[str] = []
    if placed_per_s is not None and placed_per_s < PLACED_SHARE * rate:
        parts.append(f"orders places only {placed_per_s:,.0f} of the {rate:,.0f}/s asked")
    behind = falling_behind(growth, rate)
    if behind:
        (first, first_per_s), rest = behind[0], behind[1:]
        others = [f"{role_word(group)} by {per_s:,.0f}/s" for group, per_s in rest]
        named = f"{role_word(first)} falls behind by {first_per_s:,.0f}/s"
        if others:
            named += (", " + ", ".join(others[:-1]) if others[:-1] else "") + f" and {others[-1]}"
        parts.append(f"{named}: {'their lag grows' if rest else 'its lag grows'}")
    if not parts:
        return "every group keeps up" if growth else ""
    return "; ".join(parts)
