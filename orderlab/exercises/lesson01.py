"""Lesson 01's exercises: a hot key's partition, and the keys that move when a topic grows."""

from __future__ import annotations

from typing import Any, Mapping

from ..peek import partition_for_key
from . import NotYet, exercise, whole_number

# records per partition of orders_by_customer, as a run of lesson 01 reads them back
_SIZES = {0: 324, 1: 56, 2: 58, 3: 20, 4: 124, 5: 18}
# key -> partition as read back from a 6-partition topic (what partition_for_key(key, 6) gives)
_PLACEMENT = {f"customer-{n:02d}": partition_for_key(f"customer-{n:02d}", 6) for n in range(1, 21)}



@exercise(
    "01.hot_partition",
    hint="find the tallest bar of records per partition of orders_by_customer, and give its partition number",
    facts={"records": _SIZES},
    wrong=4,
    solution=lambda records: max(records, key=records.get),
)
def hot_partition(answer: Any, *, records: Mapping[int, int]) -> str:
    partition = whole_number(answer, "the partition")
    if partition not in records:
        raise NotYet(f"the topic has partitions {min(records)} to {max(records)}; {partition} is not one of them")
    most = max(records.values())
    if records[partition] != most:
        raise NotYet(f"partition {partition} holds {records[partition]} records, and one holds {most}: find that one")
    total = sum(records.values())
    return f"partition {partition} is the hot one: {most} of the {total} records, all read by one consumer of a group"


@exercise(
    "01.moved_customers",
    hint="for every customer key, compare partition_for_key(key, 6) with partition_for_key(key, 8), and count the keys that differ",
    facts={"placement": _PLACEMENT, "partitions_after": 8},
    wrong=0,
    solution=lambda placement, partitions_after: sum(
        partition_for_key(key, partitions_after) != partition for key, partition in placement.items()
    ),
)
def moved_customers(answer: Any, *, placement: Mapping[str, int], partitions_after: int) -> str:
    """``placement``: where the broker put each customer's records (read back); the check recomputes the new count's partitions."""
    count = whole_number(answer, "the number of customers")
    if not placement:
        raise NotYet("no customer records were read back: run the cells of the skew section first")
    moved = sum(partition_for_key(key, partitions_after) != partition for key, partition in placement.items())
    if count == len(placement) - moved and count != moved:
        raise NotYet(f"{count} is how many customers stay where they are; the question is how many move")
    if count == 0:
        raise NotYet("some keys move: hash % 6 and hash % 8 agree only when the hash modulo 24 is below 6")
    if count != moved:
        raise NotYet(f"{count} is not it: count the customers whose partition with {partitions_after} partitions "
                     "differs from the one the broker put them on")
    return (f"{moved} of {len(placement)} customers would move: their next records would land on another partition "
            "than their earlier ones")
