"""What a chaos scenario found, and whether it passed (pure: no Kafka here).

A scenario's figures come from reading what really happened, never from the
roles' own counters: every output topic, every dead-letter topic, the
ledger's record of card charges and the inbox of the SMTP catcher.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

# the hard kills (SIGKILL of a broker, a role's process, the demo, a cluster node) are in orderlab.chaos.kills
HARD_KILLS: tuple[str, ...] = ("broker_kill", "email_kill", "transactions_kill", "demo_kill")
CLUSTER_SCENARIOS: tuple[str, ...] = ("leader_kill",)  # on a private three-node cluster (orderlab chaos --brokers 3)
SCENARIOS: tuple[str, ...] = (
    "worker_crash", "broker_restart", "rebalance", "poison_records", "invalid_orders", "smtp_down", *HARD_KILLS,
    *CLUSTER_SCENARIOS,
)


@dataclass(frozen=True)
class BadRecord:
    """A record a scenario injected on purpose: it must end in a dead-letter topic with its reason."""

    key: str
    path: str  # "topic" (written straight into order_details) or "api" (placed through OrdersBackend.submit)
    expected_reason: str  # a fragment the dead-letter reason must contain


@dataclass(frozen=True)
class Observed:
    """What reading the topics, the ledger and the inbox found after a scenario."""

    placed: tuple[str, ...]  # ids of the valid orders placed
    confirmed: tuple[str, ...]  # keys of order_confirmed, as its readers see them
    declined: tuple[str, ...]  # keys of order_declined
    emailed: tuple[str, ...]  # order ids of the e-mails the SMTP server received
    double_charged: int  # orders the card network charged more than once (ledger)
    dead_letters: tuple[tuple[str | None, str], ...]  # (key, reason) of every dead-letter record
    outcome_records_in_log: int | None = None  # exactly-once: outcome records incl. aborted ones (read_uncommitted)


@dataclass(frozen=True)
class Figures:
    lost: int
    no_outcome: int
    no_email: int
    double_charged: int
    double_emailed: int
    dead_lettered: int
    duplicates_in_output: int
    unmatched_bad: tuple[str, ...]
    unexpected_dead_letters: int
    aborted_outcomes: int | None


def count(observed: Observed, bad_records: Iterable[BadRecord]) -> Figures:
    """Account for every order and every injected bad record.

    ``lost``: valid orders with no outcome (confirmed or declined) plus
    confirmed orders nobody was e-mailed about. ``duplicates_in_output``:
    outcome records beyond the first per order, over both outcome topics.
    A bad record counts as dead-lettered when a dead-letter record has its
    key and a reason containing the expected fragment.
    """
    placed = set(observed.placed)
    outcomes = Counter(observed.confirmed)
    outcomes.update(observed.declined)
    confirmed = set(observed.confirmed)
    emails = Counter(observed.emailed)
    no_outcome = len(placed - set(outcomes))
    no_email = len((confirmed & placed) - set(emails))
    reasons: dict[str, list[str]] = {}
    for key, reason in observed.dead_letters:
        reasons.setdefault(key or "", []).append(reason)
    bad = list(bad_records)
    unmatched = tuple(
        record.key
        for record in bad
        if not any(reason.strip() and record.expected_reason in reason for reason in reasons.get(record.key, []))
    )
    bad_keys = {record.key for record in bad}
    unexpected = sum(len(found) for key, found in reasons.items() if key not in bad_keys)
    outcome_records = sum(outcomes.values())
    return Figures(
        lost=no_outcome + no_email,
        no_outcome=no_outcome,
        no_email=no_email,
        double_charged=observed.double_charged,
        double_emailed=sum(1 for n in emails.values() if n > 1),
        dead_lettered=len(observed.dead_letters),
        duplicates_in_output=sum(n - 1 for n in outcomes.values() if n > 1),
        unmatched_bad=unmatched,
        unexpected_dead_letters=unexpected,
        aborted_outcomes=None if observed.outcome_records_in_log is None else observed.outcome_records_in_log - outcome_records,
    )


def failures(figures: Figures, *, exactly_once: bool, problems: Iterable[str] = (), emailed_twice_allowed: int = 0) -> list[str]:
    """Why a scenario failed (empty: it passed).

    ``emailed_twice_allowed``: the e-mails a fault may send twice by design
    (a killed e-mail role re-sends at most RESEND_WINDOW); more fails.
    """
    why = list(problems)
    if figures.no_outcome:
        why.append(f"{figures.no_outcome} order(s) have no outcome")
    if figures.no_email:
        why.append(f"{figures.no_email} confirmed order(s) got no e-mail")
    if figures.double_charged:
        why.append(f"{figures.double_charged} order(s) charged twice")
    if figures.double_emailed > emailed_twice_allowed:
        allowed = f" (at most {emailed_twice_allowed} may be)" if emailed_twice_allowed else ""
        why.append(f"{figures.double_emailed} order(s) e-mailed twice{allowed}")
    if figures.unmatched_bad:
        why.append(f"{len(figures.unmatched_bad)} bad record(s) not in a dead-letter topic with their reason")
    if figures.unexpected_dead_letters:
        why.append(f"{figures.unexpected_dead_letters} dead letter(s) that no scenario injected")
    if exactly_once and figures.duplicates_in_output:
        why.append(f"{figures.duplicates_in_output} duplicate outcome record(s) despite exactly-once")
    return why


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    orders: int  # valid orders placed
    lost: int
    double_charged: int
    double_emailed: int
    dead_lettered: int  # records in this run's dead-letter topics (a poison record may be dead-lettered by two roles)
    bad_records: int  # records injected on purpose, each of which must be dead-lettered with its reason
    duplicates_in_output: int  # extra records in order_confirmed/order_declined, as read_committed/uncommitted readers see
    exactly_once: bool
    passed: bool
    seconds: float
    detail: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # scenario-specific figures
    run: int = 1  # which repetition of the scenario (``orderlab chaos --repeat``)

    @property
    def mode(self) -> str:
        return "exactly-once" if self.exactly_once else "at-least-once"

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["seconds"] = round(self.seconds, 2)
        return values


def summarise(results: Iterable[ScenarioResult]) -> dict[str, dict[str, Any]]:
    """Per scenario over its repeated runs: how many passed, how many lost orders, and the total lost.

    A fault that shows once in tens of runs (a race with a restarting
    broker) is only seen in these sums, not in any single run.
    """
    by_name: dict[str, list[ScenarioResult]] = {}
    for r in results:
        by_name.setdefault(r.name, []).append(r)
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in by_name.items():
        seconds = [r.seconds for r in runs]
        summary[name] = {
            "runs": len(runs),
            "passed": sum(1 for r in runs if r.passed),
            "failed": sum(1 for r in runs if not r.passed),
            "runs_with_lost_orders": sum(1 for r in runs if r.lost),
            "lost_total": sum(r.lost for r in runs),
            "seconds_mean": round(sum(seconds) / len(seconds), 2),
            "seconds_max": round(max(seconds), 2),
        }
    return summary


def format_summary(summary: dict[str, dict[str, Any]]) -> str:
    """One line per scenario of :func:`summarise`, for a terminal."""
    return "\n".join(
        f"{name}: {s['passed']}/{s['runs']} runs passed; {s['runs_with_lost_orders']} run(s) lost orders, "
        f"{s['lost_total']} lost in all; {s['seconds_mean']:.1f} s a run on average, {s['seconds_max']:.1f} s at most"
        for name, s in summary.items()
    )


def format_table(results: Iterable[ScenarioResult]) -> str:
    """One line per scenario (and per run, when a scenario was repeated), for a terminal."""
    results = list(results)
    repeated = any(r.run > 1 for r in results)
    run_header = f"{'run':>4} " if repeated else ""
    header = (
        f"{'scenario':<15} {run_header}{'mode':<13} {'orders':>6} {'bad':>4} {'lost':>4} {'2x paid':>7} {'2x mail':>7} "
        f"{'DLQ':>4} {'dups':>4} {'secs':>6}  result"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        run = f"{r.run:>4} " if repeated else ""
        lines.append(
            f"{r.name:<15} {run}{r.mode:<13} {r.orders:>6} {r.bad_records:>4} {r.lost:>4} {r.double_charged:>7} "
            f"{r.double_emailed:>7} {r.dead_lettered:>4} {r.duplicates_in_output:>4} {r.seconds:>6.1f}  "
            f"{'PASS' if r.passed else 'FAIL'}"
        )
    return "\n".join(lines)
