"""What the classroom bench reads inside the lesson's kernel: one call, one JSON string.

The bench evaluates :func:`reading` as a *silent* user expression through
the kernel's own protocol (see :mod:`.kernel`): nothing appears in the
notebook, the execution count does not move, and the lesson's code stays
as a class runs it. It reads what the control room has already measured
(its last snapshot, its samples' lag growth) and the e-mail latencies the
e-mail role keeps, so it adds no request to Kafka and almost no work to a
kernel that is busy running the pipeline.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def reading(room: Any, latencies_after: float, growth_since: float | None = None) -> str:
    """The control room's figures now, as JSON.

    ``latency_ms``: order → e-mail of the e-mails sent after
    ``latencies_after`` (unix time), oldest first, and ``latest_sent`` to
    ask from next time (the e-mail role keeps only its last 20,000).
    ``lag_growth_per_s``: each group's lag growth over the control room's
    samples since ``growth_since`` (when given).
    """
    from orderlab.ui.laggrowth import lag_growth

    snapshot = room.last_snapshot
    pairs = [(created, sent) for created, sent in room.lab.email_latencies() if sent > latencies_after]
    figures: dict[str, Any] = {
        "pid": os.getpid(),
        "now": time.time(),
        "frames": room.frames,
        "slider_rate": room.rate.value,
        "lab_rate": float(room.lab.rate),
        "running": bool(room.running),
        "topic_suffix": room.lab.settings.topic_suffix,
        "status": room.status.value,
        "behind": room.behind.value,
        "held": room.held.value,
        "latency_ms": [round((sent - created) * 1000.0, 1) for created, sent in pairs],
        "latest_sent": max((sent for _created, sent in pairs), default=latencies_after),
        "snapshot": None if snapshot is None else {
            "taken_at": snapshot.taken_at, "placed": snapshot.placed, "confirmed": snapshot.confirmed,
            "declined": snapshot.declined, "emails_sent": snapshot.emails_sent,
        },
    }
    if growth_since is not None:
        figures["lag_growth_per_s"] = lag_growth(room.history.samples(), growth_since, time.time()).per_s
    return json.dumps(figures)
