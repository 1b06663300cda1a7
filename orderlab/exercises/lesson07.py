"""Lesson 07's exercises: what a crash wrote twice, who dead-letters a bad record, the backlog after a restart."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..topology import load_topology
from . import NotYet, exercise


def _whole_number(answer: Any, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    return answer


@exercise(
    "07.crash_duplicates",
    hint="read order_confirmed and order_declined back (read_records), and count the outcome records beyond "
         "the first for an order",
    facts={"duplicates": 4, "crashed_batch": 4},
    wrong=0,
    solution=lambda duplicates, crashed_batch: duplicates,
)
def crash_duplicates(answer: Any, *, duplicates: int, crashed_batch: int) -> str:
    """``duplicates``: extra outcome records, read back from both outcome topics; ``crashed_batch``: the records the
    worker died holding."""
    count = _whole_number(answer, "the number of records")
    if count == duplicates:
        return ("the outcomes the dead worker had sent but not committed were written again by the survivor: "
                "at-least-once; the ledger kept the card charges to one each")
    if count == 0:
        raise NotYet("there are some: the dead worker sent its outcomes but never committed, so the survivor read "
                     "that batch again and answered it again")
    raise NotYet(f"{count} is not what the topics say: outcome records (both topics) minus the orders that have one")


def _readers(topic: str, topology_name: str) -> list[str]:
    topology = load_topology(topology_name)
    return [spec.name for spec in topology.consumers() if any(read.topic == topic for read in spec.reads)]


@exercise(
    "07.dead_letters_per_record",
    hint="look at the 'reads' column of roles_map(lab.settings): which roles read order_confirmed? Each of them "
         "dead-letters a record it cannot read",
    facts={"topic": "order_confirmed", "topology": "seed"},
    wrong=1,
    solution=lambda topic, topology: len(_readers(topic, topology)),
)
def dead_letters_per_record(answer: Any, *, topic: str, topology: str) -> str:
    count = _whole_number(answer, "the number of dead letters")
    readers = _readers(topic, topology)
    if count == len(readers):
        return (f"{count}: {' and '.join(readers)} read {topic}, each in its own consumer group, and each puts what it "
                "cannot read on the dead-letter topic with its reason")
    if count == 1:
        raise NotYet(f"more than one role reads {topic}: every consumer group gets every record, a bad one too")
    raise NotYet(f"{count} is not it: count the roles whose 'reads' column has {topic}")


def _peak(frame: pd.DataFrame, role: str, since_s: float) -> int:
    column = f"lag {role}"
    later = frame.loc[frame.index >= since_s, column].dropna()
    return int(later.max()) if len(later) else 0


_FRAME = pd.DataFrame(
    {"broker": ["up", "away", "away", "up", "up", "up"], "lag transactions": [2, None, None, 180, 35, 0]},
    index=pd.Index([-0.5, 0.5, 1.0, 6.0, 6.5, 7.0], name="s"),
).astype({"lag transactions": "Int64"})


@exercise(
    "07.backlog_peak",
    hint="in watch.frame(), take the 'lag transactions' column from the moment the broker answers again "
         "(watch.marks['answers'] - watch.marks['stopping'] seconds) on, and give its highest value",
    facts={"frame": _FRAME, "answered_s": 6.0},
    wrong=2,
    solution=lambda frame, answered_s: _peak(frame, "transactions", answered_s),
)
def backlog_peak(answer: Any, *, frame: pd.DataFrame, answered_s: float) -> str:
    """``frame``: the restart watch's samples (index: seconds since the stop); ``answered_s``: when the broker answered."""
    count = _whole_number(answer, "the lag (records)")
    peak = _peak(frame, "transactions", answered_s)
    if peak == 0:
        raise NotYet("no lag was read after the broker came back: run the restart cells first")
    if count == peak:
        return ("the highest lag once the broker was back: the orders that had waited in the producer arrived at "
                "once, and the transactions group worked them off")
    before = frame.loc[frame.index < 0, "lag transactions"].dropna()
    if len(before) and count == int(before.max()):
        raise NotYet("that is the lag before the broker stopped; the question is about after it answered again")
    raise NotYet(f"{count} is not the highest lag read after the broker answered again")
