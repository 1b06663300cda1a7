"""Tables (pandas DataFrames) of what the lab holds, for display in lessons.

Pure: they take the objects the lab returns (snapshots, caught e-mails,
dead letters) and shape them; sorting makes the output of a lesson stable.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import pandas as pd

from .chartdata import short_group_name


def roles_table(snapshot: Any) -> pd.DataFrame:
    """One row per role with its state and counters (missing counters as 0)."""
    rows = []
    for name, status in snapshot.roles.items():
        row = {key: value for key, value in status.items() if key not in ("name", "error")}
        row["role"] = name
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["state"]).rename_axis("role")
    frame = pd.DataFrame(rows).set_index("role")
    counters = [column for column in frame.columns if column != "state"]
    frame[counters] = frame[counters].fillna(0).astype(int)
    return frame[["state", *counters]]


def counts_line(snapshot: Any) -> str:
    """The headline counters on one line."""
    return (
        f"placed {snapshot.placed:,} · confirmed {snapshot.confirmed:,} · declined {snapshot.declined:,} · "
        f"e-mailed {snapshot.emails_sent:,} · analytics {snapshot.analytics_orders_seen:,} · "
        f"dead-lettered {snapshot.dead_lettered:,} · workers {snapshot.workers}"
    )


def outage_line(snapshot: Any) -> str:
    """``broker unreachable since 14:03:07 (orders, transactions-0)`` while a role has lost the broker, else ""."""
    since = getattr(snapshot, "broker_unreachable_since", None)  # a snapshot-like of a Lab stand-in may lack it
    if since is None:
        return ""
    lost = ", ".join(sorted(getattr(snapshot, "broker_lost", {})))
    return f"broker unreachable since {time.strftime('%H:%M:%S', time.localtime(since))}" + (f" ({lost})" if lost else "")


def lag_table(lag: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"records behind": [lag[group] for group in sorted(lag)]},
        index=pd.Index([short_group_name(group) for group in sorted(lag)], name="group"),
    )


def emails_table(mails: Iterable[Any]) -> pd.DataFrame:
    """The caught e-mails, sorted by order id: order, recipient, subject, latency."""
    rows = [
        {
            "order_id": mail.order_id,
            "to": mail.to,
            "subject": mail.subject,
            "latency_ms": None if mail.latency_s is None else round(mail.latency_s * 1000.0, 1),
        }
        for mail in mails
    ]
    frame = pd.DataFrame(rows, columns=["order_id", "to", "subject", "latency_ms"])
    return frame.sort_values("order_id", kind="stable").reset_index(drop=True)


def dead_letters_table(letters: Iterable[Any]) -> pd.DataFrame:
    """Dead letters: where each came from, which role refused it and why."""
    rows = [
        {
            "source_topic": letter.source_topic,
            "role": letter.role,
            "reason": letter.reason,
            "key": letter.key.decode(errors="replace") if letter.key else "",
            "value": (letter.value or b"")[:60].decode(errors="replace"),
        }
        for letter in letters
    ]
    frame = pd.DataFrame(rows, columns=["source_topic", "role", "reason", "key", "value"])
    return frame.sort_values(["source_topic", "key", "reason", "role"], kind="stable").reset_index(drop=True)
