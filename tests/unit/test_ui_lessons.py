"""The lesson helpers that need no broker: settings per run, the drained
condition, the seeded payment examples, the side-by-side table, key → partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from orderlab.lessons import LESSON_SUFFIX, check, decline_share, drained, lesson_settings, payment_examples, side_by_side
from orderlab.peek import partition_for_key


def test_lesson_settings_are_unique_per_run_with_a_ledger_of_their_own(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9999")
    first, second = lesson_settings("lesson05"), lesson_settings("lesson05")
    assert first.topic_suffix != second.topic_suffix
    assert LESSON_SUFFIX.search(first.topic_suffix).group(1) == "lesson05"
    assert first.db_path != second.db_path and first.db_path.endswith(first.topic_suffix.lstrip("-") + ".db")
    assert first.bootstrap_servers == "127.0.0.1:9999"
    assert lesson_settings("lesson08", exactly_once=True).exactly_once
    with pytest.raises(ValueError, match="lesson05"):
        lesson_settings("Lesson Five")


@dataclass
class Snap:
    placed: int
    confirmed: int
    declined: int
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return self.confirmed + self.declined


def test_drained_counts_records_so_an_order_sent_twice_is_waited_for_twice():
    roles = {"email": {"consumed": 9}, "analytics": {"consumed": 20}}
    assert drained(Snap(10, 9, 1, roles))
    assert not drained(Snap(11, 9, 1, roles))  # one placed record has no outcome yet
    assert not drained(Snap(10, 10, 0, roles))  # e-mail has not handled every confirmation
    assert not drained(Snap(10, 9, 1, {"email": {"consumed": 9}, "analytics": {"consumed": 19}}))
    assert not drained(Snap(1, 1, 0))  # no counters yet


def test_payment_examples_are_the_same_every_run_and_follow_the_probability():
    first, second = payment_examples(20, decline_probability=0.3, seed=3), payment_examples(20, decline_probability=0.3, seed=3)
    assert first.equals(second)
    assert set(first.reason) <= {"approved", "insufficient_funds", "card_expired", "suspected_fraud", "over_card_limit"}
    assert (first.approved == (first.reason == "approved")).all()
    assert decline_share(0.0, 200) == 0.0 and decline_share(1.0, 200) == 1.0
    assert 0.2 < decline_share(0.3, 1000) < 0.4


def test_partition_for_key_is_stable_and_spreads_keys():
    # that it matches the broker's placement is checked against a real topic in tests/integration
    assert partition_for_key("order-1", 6) == partition_for_key(b"order-1", 6)
    assert all(0 <= partition_for_key(f"order-{n}", 6) < 6 for n in range(100))
    assert {partition_for_key(f"order-{n}", 6) for n in range(100)} == set(range(6))
    assert partition_for_key("order-1", 1) == 0


@dataclass
class Result:
    orders: int
    lost: int
    double_charged: int
    double_emailed: int
    duplicates_in_output: int
    passed: bool
    extra: dict[str, Any] = field(default_factory=dict)


def test_side_by_side_has_a_column_per_mode():
    table = side_by_side({
        "at_least_once": Result(100, 0, 0, 0, 7, True),
        "exactly_once": Result(100, 0, 0, 0, 0, True, {"aborted_outcome_records_in_log": 5}),
    })
    assert list(table.columns) == ["at-least-once", "exactly-once"]
    assert table.loc["duplicate outcome records"].tolist() == [7, 0]
    assert table.loc["aborted records in the log"].tolist() == ["-", 5]


def test_check_prints_one_line(capsys):
    check("it works", True, "hint")
    check("it fails", False, "look here")
    assert capsys.readouterr().out.splitlines() == ["✓ it works", "✗ it fails: look here"]


def test_wait_for_assignment_looks_past_a_coordinator_not_there_yet(monkeypatch):
    from kafka.errors import CoordinatorNotAvailableError, GroupAuthorizationFailedError

    from orderlab import peek
    from orderlab.settings import Settings

    answers = [CoordinatorNotAvailableError(), CoordinatorNotAvailableError(),
               {"state": "Stable", "assignment": {"member-a": [0, 1, 2, 3, 4, 5]}}]

    def describe(settings, group):  # noqa: ANN001, ANN202
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(peek, "describe_group", describe)
    monkeypatch.setattr(peek.time, "sleep", lambda seconds: None)
    settings = Settings(bootstrap_servers="localhost:9092", order_details_partitions=6)
    description, states = peek.wait_for_assignment(settings, "g", members=1, timeout_s=30)
    assert description["state"] == "Stable" and states == ["Stable"] and answers == []
    answers.append(GroupAuthorizationFailedError())  # not retriable: raised at once
    with pytest.raises(GroupAuthorizationFailedError):
        peek.wait_for_assignment(settings, "g", members=1, timeout_s=30)
