"""Lesson 06's exercises: who holds which partition when a group scales."""

from __future__ import annotations

from typing import Any, Mapping

from . import NotYet, exercise


def _stable_assignment(description: Mapping[str, Any]) -> dict[str, list[int]]:
    """The members' partitions, once the group is Stable (a clear hint while it is not)."""
    assignment = dict(description.get("assignment", {}))
    if not assignment:
        raise NotYet("the group had no members when it was described: the lab must be running; run the cell above again")
    if description.get("state") != "Stable":
        raise NotYet(f"the group was still rebalancing ({description.get('state')}) when it was described: "
                     "run the cell above again")
    return assignment


def _whole_number(answer: Any, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    if answer != int(answer):
        raise NotYet(f"a partition is never split between workers: {what} is a whole number")
    return int(answer)


_EIGHT = {"state": "Stable", "assignment": {f"member-{n}": ([n] if n < 6 else []) for n in range(8)}}
_FOUR = {"state": "Stable", "assignment": {"member-a": [0, 1], "member-b": [2, 3], "member-c": [4], "member-d": [5]}}


@exercise(
    "06.idle",
    hint="count the workers (the slider, or the counters line), then the workers in the owner column of the "
         "partition table: the difference holds nothing",
    facts={"description": _EIGHT},
    wrong=0,
    solution=lambda description: sum(1 for parts in description["assignment"].values() if not parts),
)
def idle(answer: Any, *, description: Mapping[str, Any]) -> str:
    assignment = _stable_assignment(description)
    count = _whole_number(answer, "the number of idle workers")
    expected = sum(1 for parts in assignment.values() if not parts)
    partitions = sum(len(parts) for parts in assignment.values())
    if count == expected:
        return (f"{expected} of the {len(assignment)} workers hold no partition: a partition has one reader "
                f"in a group, and there are {partitions}")
    if count == len(assignment):
        raise NotYet("not all of them: the owner column of the partition table names the workers that hold a partition")
    raise NotYet(f"{count} is not what the group says: how many different workers does the owner column name, "
                 f"of the {len(assignment)} in the group?")


@exercise(
    "06.busiest",
    hint="read the owner column of the partition table: how many partitions does the worker named most often hold?",
    facts={"description": _FOUR},
    wrong=1.5,  # six partitions over four workers, on average
    solution=lambda description: max(len(parts) for parts in description["assignment"].values()),
)
def busiest(answer: Any, *, description: Mapping[str, Any]) -> str:
    assignment = _stable_assignment(description)
    count = _whole_number(answer, "the number of partitions")
    shares = sorted((len(parts) for parts in assignment.values()), reverse=True)
    if count == shares[0]:
        return (f"the busiest worker holds {count} partitions ({' + '.join(map(str, shares))} over "
                f"{len(shares)} workers): it gets {count}x the records of a worker with one")
    if count == shares[-1]:
        raise NotYet("that is the least busy worker's share: some hold more")
    raise NotYet(f"{count} is not what the group says: count the rows each owner has in the partition table")
