"""Lesson 09's exercises: what replication tolerates, and where leadership goes back to."""

from __future__ import annotations

from typing import Any

from . import NotYet, exercise


def _whole_number(answer: Any, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    return answer


@exercise(
    "09.tolerated_failures",
    hint="compare the two numbers replication_of(cluster, topic) gave: how many copies must an acks=all write reach?",
    facts={"replication_factor": 3, "min_insync": 2},
    wrong=2,
    solution=lambda replication_factor, min_insync: replication_factor - min_insync,
)
def tolerated_failures(answer: Any, *, replication_factor: int, min_insync: int) -> str:
    expected = replication_factor - min_insync
    down = _whole_number(answer, "a number of nodes")
    if down == replication_factor - 1 and down != expected:
        raise NotYet(
            f"with {down} nodes down one copy of the data survives, but an acks=all write is refused while fewer than "
            "min.insync.replicas copies are in sync"
        )
    if down != expected:
        raise NotYet(f"{down} is not it: count the copies that may be missing while min.insync.replicas={min_insync} are in sync")
    return (f"with replication factor {replication_factor} and min.insync.replicas={min_insync}, acks=all writes "
            f"carry on with {expected} node down")


@exercise(
    "09.preferred_leader",
    hint="look at the replicas column of that partition in the table: the preferred leader has a fixed place in that list",
    facts={"partition": 0, "replicas": (2, 3, 1), "leader": 3},
    wrong=3,
    solution=lambda partition, replicas, leader: replicas[0],
)
def preferred_leader(answer: Any, *, partition: int, replicas: tuple[int, ...], leader: int | None) -> str:
    expected = replicas[0]
    node = _whole_number(answer, "a node id")
    if node not in replicas:
        raise NotYet(f"node {node} holds no copy of partition {partition} (its replicas are {list(replicas)}): "
                     "only a replica can lead")
    if node == leader and node != expected:
        raise NotYet("that node leads it now; a preferred leader election moves leadership to the preferred replica instead")
    if node != expected:
        raise NotYet(f"node {node} is a replica of partition {partition}, but not the preferred one: "
                     "which place in the list is that?")
    return f"a preferred leader election gives partition {partition} to the first of its replicas"
