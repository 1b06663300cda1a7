"""``orderlab demo``: place N orders through the whole pipeline and account for each."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .cleanup import remove_run
from .lab import Lab
from .progress import ProgressBar
from .settings import Settings, new_run_suffix
from .snapshot import LabSnapshot


@dataclass(frozen=True)
class DemoReport:
    reconciliation: dict[str, int]
    elapsed_s: float
    settle_timeout_hit: bool
    settings: dict[str, Any]

    def failures(self) -> list[str]:
        """What fails the run: orders lost, e-mails sent twice, and with exactly-once an outcome record twice.

        Why an outcome record sent again does not fail an at-least-once run:
        it is what at-least-once promises after a crash (a worker that dies
        between its send and its commit sends again), and the ledger keeps the
        charge to one. A second run on the topics of a killed one meets them;
        counting them as failures made that run exit 1 with nothing charged or
        e-mailed twice.
        """
        r = self.reconciliation
        failed = [f"{r['lost']} lost"] if r["lost"] else []
        if r["duplicate_emails"]:
            failed.append(f"{r['duplicate_emails']} e-mailed twice")
        if self.settings.get("exactly_once") and r["duplicate_confirmations"]:
            failed.append(f"{r['duplicate_confirmations']} outcome records twice under exactly-once")
        return failed

    @property
    def ok(self) -> bool:
        """No :meth:`failures`."""
        return not self.failures()

    def verdict(self) -> str:
        """One line: OK (with the outcome records sent again, if any), or what failed."""
        failed = self.failures()
        if failed:
            return "FAILED: " + ", ".join(failed)
        again = self.reconciliation["duplicate_confirmations"]
        return "OK: every order accounted for, none e-mailed twice" + (
            f" ({again} outcome records sent again after a crash: at-least-once, charged once)" if again else "")

    def as_dict(self) -> dict[str, Any]:
        return {**self.reconciliation, "elapsed_s": round(self.elapsed_s, 3), "timed_out": self.settle_timeout_hit, **self.settings}


def run_demo(
    orders: int,
    rate: float,
    *,
    settings: Settings | None = None,
    workers: int = 2,
    decline_probability: float = 0.1,
    timeout_s: float | None = None,
    show_progress: bool = False,
    keep: bool = False,
) -> DemoReport:
    """Start a Lab on fresh topics, place ``orders`` at ``rate``/s, wait until all are accounted for, reconcile.

    The run's topics and groups are removed at the end unless ``keep`` (or
    unless ``settings`` named a topic suffix of its own: those are not the demo's).
    """
    base = settings or Settings.from_env()
    own_topics = not base.topic_suffix
    settings = base.with_(topic_suffix=base.topic_suffix or new_run_suffix("demo"))
    # bounded: the time the orders need at this rate, plus room to drain
    bound = timeout_s if timeout_s is not None else orders / max(rate, 1e-9) + 60.0
    bar = ProgressBar(orders, "orders done") if show_progress else None
    started = time.monotonic()
    lab = Lab(settings, rate=rate, workers=workers, decline_probability=decline_probability, limit=orders)

    def done(snapshot: LabSnapshot) -> bool:
        return (snapshot.placed >= orders and snapshot.settled >= orders and snapshot.confirmations_read >= snapshot.confirmed
                and snapshot.analytics_orders_seen >= orders and _own_orders_done(lab))

    with lab:
        last = lab.wait_until(
            done,
            timeout=bound,
            progress=(lambda s: bar.update(s.declined + min(s.confirmed, s.emails_sent), f"placed {s.placed}")) if bar else None,
        )
        timed_out = not done(last)
    if bar:
        bar.close()
    elapsed = time.monotonic() - started
    reconciliation = lab.reconcile().as_dict()
    removed = remove_run(settings) if own_topics and not keep else 0
    return DemoReport(
        reconciliation=reconciliation,
        elapsed_s=elapsed,
        settle_timeout_hit=timed_out,
        settings={"rate": rate, "workers": workers, "topic_suffix": settings.topic_suffix, "exactly_once": settings.exactly_once,
                  "topics_removed": removed},
    )


def _own_orders_done(lab: Lab) -> bool:
    """Whether the ledger has a payment for every order this run placed, and an e-mail for every one charged.

    The counters alone are not enough on topics a run continues (a suffix
    of its own, after a run that was killed): the roles count the earlier
    run's redelivered records too, and would reach the run's number of
    orders before its own last ones are done.
    """
    if lab.orders is None or lab.ledger is None:
        return False
    placed = lab.orders.placed_ids
    return lab.ledger.paid_count(placed) >= len(set(placed)) and lab.ledger.email_count(placed) >= lab.ledger.charge_count(placed)


def format_report(report: DemoReport) -> str:
    r = report.reconciliation
    lines = [
        f"orders placed         {r['orders_placed']:>8}",
        f"  confirmed           {r['orders_confirmed']:>8}",
        f"  declined            {r['orders_declined']:>8}",
        f"e-mails sent          {r['emails_sent']:>8}",
        f"analytics saw         {r['analytics_orders_seen']:>8}",
        f"dead-lettered         {r['dead_lettered']:>8}",
        f"lost                  {r['lost']:>8}",
        f"e-mailed twice        {r['duplicate_emails']:>8}",
        f"outcomes sent again   {r['duplicate_confirmations']:>8}",
        f"elapsed               {report.elapsed_s:>7.1f}s",
        (f"removed this run's {report.settings['topics_removed']} topics (--keep keeps them)" if report.settings["topics_removed"]
         else f"kept the topics of {report.settings['topic_suffix']}"),
        report.verdict(),
    ]
    return "\n".join(lines)
