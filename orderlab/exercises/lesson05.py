"""Lesson 05's exercises: reading the control room's charts and partition table."""

from __future__ import annotations

import time
from typing import Any, Mapping

from ..snapshot import LabSnapshot
from ..ui.chartdata import short_group_name
from . import NotYet, exercise

# records per second: below this, a group's lag is flat (batches and commits make it wobble)
GROWING = 10.0
TOPICS = ("order_details", "order_confirmed", "order_declined")


def _counts(*, settled: int, declined: int) -> LabSnapshot:
    """A snapshot with only the payment counters set: the example facts of 05.decline_share."""
    return LabSnapshot(taken_at=time.time(), rate=0.0, workers=4, placed=settled, confirmed=settled - declined,
                       declined=declined, emails_sent=0, confirmations_read=0, analytics_orders_seen=0,
                       dead_lettered=0, replayed=0)


def fastest_growing(growth: Mapping[str, float]) -> str:
    """The group whose lag grew fastest (``growth``: records per second by short group name)."""
    return max(growth, key=lambda group: growth[group])


@exercise(
    "05.bottleneck",
    hint="while the setting holds, look at the lag chart and the lag column of the partition table: "
         "whose lag keeps climbing? Name the group as the chart's legend does (transactions, email or analytics)",
    facts={"growth": {"transactions": 214.6, "email": 1.3, "analytics": 0.4}},
    wrong="email",
    solution=lambda growth: fastest_growing(growth),
)
def bottleneck(answer: Any, *, growth: Mapping[str, float]) -> str:
    if not growth:
        raise NotYet("no lag was measured while the setting held: the lab must be running; run the cell above again")
    if not isinstance(answer, str):
        raise NotYet(f"name the group as a string (in quotes), such as 'analytics', not a {type(answer).__name__}")
    name = short_group_name(answer.strip().lower())
    if name in TOPICS:
        raise NotYet(f"{name} is a topic: name the consumer group that cannot keep up with what is written to it")
    if name not in growth:
        raise NotYet(f"{answer!r} is not one of the groups; they are {', '.join(growth)}")
    fastest = fastest_growing(growth)
    if growth[fastest] < GROWING:
        raise NotYet("no group's lag grew while the setting held, so there was no bottleneck to find: "
                     "run the cell above again, without changing the sliders while it watches")
    if growth[name] >= 0.9 * growth[fastest]:
        return f"{name} is the bottleneck: its lag grew fastest while the setting held"
    if growth[name] >= GROWING:
        raise NotYet(f"{name}'s lag grew as well, but another group fell behind faster: compare the lag chart's lines")
    raise NotYet(f"{name} keeps up: its lag stayed flat while the setting held. Which line of the lag chart climbs?")


@exercise(
    "05.decline_share",
    hint="compare the two snapshots printed above: of the orders settled between them, "
         "what share was declined? A number between 0 and 1",
    facts={"before": _counts(settled=1000, declined=100), "after": _counts(settled=1600, declined=388)},
    wrong=round(388 / 1600, 2),  # the share since the lab started
    solution=lambda before, after: round((after.declined - before.declined) / (after.settled - before.settled), 2),
)
def decline_share(answer: Any, *, before: Any, after: Any) -> str:
    settled = after.settled - before.settled
    declined = after.declined - before.declined
    if settled <= 0:
        raise NotYet("no order was settled between the two snapshots: run the cell above again while orders flow")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"give the share as a number between 0 and 1 (such as 0.25), not a {type(answer).__name__}")
    if 1 < answer <= 100:
        raise NotYet("give the share as a fraction between 0 and 1, not a percentage")
    expected = declined / settled
    if abs(answer - expected) <= 0.006:
        return "that is the share of the orders settled between the two snapshots that were declined"
    if after.settled and abs(answer - after.declined / after.settled) <= 0.006:
        raise NotYet("that is the share since the lab started: count only the orders settled between the two snapshots")
    raise NotYet(f"{answer} is not what the counters say: take the declined and the settled orders between "
                 "the two snapshots (after minus before), not the totals")
