"""Lesson 00's exercises: reading the map of roles and topics."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from ..topology import load_topology
from . import NotYet, exercise, whole_number

_EXAMPLE = Settings(bootstrap_servers="localhost:9092", topic_suffix="-lesson00-1a2b3c4d")


def email_input(settings: Settings) -> str:
    """The run's topic the e-mail role reads, from its declaration in the topology."""
    return load_topology(settings.topology).role("email").ports(settings).topics[0]


@exercise(
    "00.email_reads",
    hint="look at the 'reads' column of roles_map(settings) and copy the e-mail role's topic",
    facts={"settings": _EXAMPLE},
    wrong=_EXAMPLE.order_details_topic,
    solution=lambda settings: email_input(settings),
)
def email_reads(answer: Any, *, settings: Settings) -> str:
    expected = email_input(settings)
    if not isinstance(answer, str):
        raise NotYet(f"give the topic's name as a string (in quotes), not a {type(answer).__name__}")
    if answer.removesuffix(settings.topic_suffix) == expected.removesuffix(settings.topic_suffix) and answer != expected:
        raise NotYet("right topic, but this run's topics carry a suffix: copy the whole name from roles_map(settings)")
    if answer != expected:
        raise NotYet(f"{answer!r} is not what the e-mail role reads: find the 'email' row of roles_map(settings)")
    return "the e-mail role reads order_confirmed"


@exercise(
    "00.partitions",
    hint="look at the 'partitions' column of create_topics(settings)",
    facts={"actual": 6},
    wrong=3,
    solution=lambda actual: actual,
)
def partitions(answer: Any, *, actual: int) -> str:
    whole_number(answer, "the number of partitions")
    if answer != actual:
        raise NotYet(f"{answer} is not it: the broker says otherwise; read the 'partitions' column again")
    return f"order_details has {actual} partitions"
