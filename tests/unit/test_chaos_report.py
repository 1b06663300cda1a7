"""The chaos accounting (pure): what counts as lost, duplicated, dead-lettered."""

from __future__ import annotations

import json

from orderlab.chaos.report import SCENARIOS, BadRecord, Observed, ScenarioResult, count, failures, format_table


def observed(**changes: object) -> Observed:
    values: dict[str, object] = dict(
        placed=("a", "b", "c", "d"),
        confirmed=("a", "b", "c"),
        declined=("d",),
        emailed=("a", "b", "c"),
        double_charged=0,
        dead_letters=(),
    )
    values.update(changes)
    return Observed(**values)  # type: ignore[arg-type]


def test_a_clean_run_passes() -> None:
    figures = count(observed(), [])
    assert (figures.lost, figures.duplicates_in_output, figures.double_emailed) == (0, 0, 0)
    assert failures(figures, exactly_once=True) == []


def test_orders_without_outcome_or_email_are_lost() -> None:
    figures = count(observed(confirmed=("a", "b"), declined=(), emailed=("a",)), [])
    assert (figures.no_outcome, figures.no_email, figures.lost) == (2, 1, 3)
    assert failures(figures, exactly_once=False) == ["2 order(s) have no outcome", "1 confirmed order(s) got no e-mail"]


def test_duplicates_are_counted_over_both_outcome_topics_and_fail_only_exactly_once() -> None:
    figures = count(observed(confirmed=("a", "a", "a", "b", "c"), declined=("d", "d")), [])
    assert figures.duplicates_in_output == 3 and figures.lost == 0
    assert failures(figures, exactly_once=False) == []
    assert failures(figures, exactly_once=True) == ["3 duplicate outcome record(s) despite exactly-once"]


def test_double_charges_and_double_emails_fail() -> None:
    figures = count(observed(emailed=("a", "a", "b", "c", "c", "c"), double_charged=1), [])
    assert figures.double_emailed == 2 and figures.double_charged == 1
    assert "2 order(s) e-mailed twice" in failures(figures, exactly_once=False)
    assert "1 order(s) charged twice" in failures(figures, exactly_once=False)


def test_a_bad_record_needs_its_key_and_its_reason_in_a_dead_letter_topic() -> None:
    bad = [BadRecord("x", "topic", "not JSON"), BadRecord("y", "api", "unknown currency"), BadRecord("z", "topic", "no value")]
    letters = (("x", "not JSON: Expecting value"), ("x", "not JSON: Expecting value"), ("y", "wrong reason"), ("q", "stray"))
    figures = count(observed(dead_letters=letters), bad)
    assert figures.unmatched_bad == ("y", "z")
    assert figures.dead_lettered == 4 and figures.unexpected_dead_letters == 1
    assert failures(figures, exactly_once=False) == [
        "2 bad record(s) not in a dead-letter topic with their reason",
        "1 dead letter(s) that no scenario injected",
    ]


def test_aborted_records_are_what_the_log_holds_beyond_what_readers_see() -> None:
    figures = count(observed(outcome_records_in_log=9), [])
    assert figures.aborted_outcomes == 5
    assert count(observed(), []).aborted_outcomes is None


def test_problems_fail_a_scenario_first() -> None:
    assert failures(count(observed(), []), exactly_once=False, problems=["the crash did not happen"]) == [
        "the crash did not happen"
    ]


def test_result_as_dict_is_json_and_the_table_has_a_line_per_scenario() -> None:
    results = [
        ScenarioResult(name, 10, 0, 0, 0, 0, 0, 2, False, True, 1.23456, "ok", {"k": 1}) for name in SCENARIOS
    ]
    values = json.loads(json.dumps(results[0].as_dict()))
    assert values["seconds"] == 1.23 and values["name"] == "worker_crash" and values["extra"] == {"k": 1}
    assert set(values) >= {"name", "orders", "lost", "double_charged", "double_emailed", "dead_lettered", "bad_records",
                           "duplicates_in_output", "exactly_once", "passed", "seconds", "detail"}
    table = format_table(results).splitlines()
    assert len(table) == 2 + len(SCENARIOS)
    assert all(line.endswith("PASS") for line in table[2:])


def test_double_emails_within_the_allowed_window_pass_and_beyond_it_fail() -> None:
    figures = count(observed(emailed=("a", "a", "b", "b", "c")), [])  # a and b e-mailed twice
    assert failures(figures, exactly_once=False, emailed_twice_allowed=2) == []
    assert failures(figures, exactly_once=False, emailed_twice_allowed=1) == ["2 order(s) e-mailed twice (at most 1 may be)"]
