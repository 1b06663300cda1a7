"""`orderlab demo`'s verdict: what fails a run and what is only shown."""

from __future__ import annotations

from orderlab.demo import DemoReport, format_report
from orderlab.reconcile import account


def _report(*, confirmed: list[str], emailed: list[str], exactly_once: bool = False, placed: tuple[str, ...] = ("a", "b")) -> DemoReport:
    reconciliation = account(placed, confirmed, [], emailed, len(placed), 0).as_dict()
    return DemoReport(reconciliation, 1.0, False, {"exactly_once": exactly_once, "topics_removed": 0, "topic_suffix": "-demo-x"})


def test_an_outcome_sent_again_after_a_crash_is_shown_and_passes_at_least_once() -> None:
    report = _report(confirmed=["a", "a", "b"], emailed=["a", "b"])
    assert report.ok
    assert "1 outcome records sent again" in report.verdict()
    assert "outcomes sent again          1" in format_report(report)


def test_the_same_redelivery_fails_exactly_once() -> None:
    report = _report(confirmed=["a", "a", "b"], emailed=["a", "b"], exactly_once=True)
    assert not report.ok
    assert report.verdict() == "FAILED: 1 outcome records twice under exactly-once"


def test_a_second_email_or_a_lost_order_fails_either_way() -> None:
    twice = _report(confirmed=["a", "b"], emailed=["a", "a", "b"])
    assert not twice.ok and twice.verdict() == "FAILED: 1 e-mailed twice"
    lost = _report(confirmed=["a"], emailed=["a"])
    assert not lost.ok and lost.verdict() == "FAILED: 1 lost"


def test_a_clean_run_says_ok_with_nothing_to_add() -> None:
    report = _report(confirmed=["a", "b"], emailed=["a", "b"])
    assert report.ok and report.verdict() == "OK: every order accounted for, none e-mailed twice"
