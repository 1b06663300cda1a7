"""Back-off after a failed poll or batch (the broker away, a send timing out):
0.2 s, doubling to 2 s, reset by the first batch that goes through."""

from __future__ import annotations

import logging

from .base import Counters

log = logging.getLogger("orderlab.services.consumer")


class BackOff:
    """How long a worker waits before trying again, and the one warning it logs per run of failures."""

    first_s = 0.2
    longest_s = 2.0

    def __init__(self, name: str, counters: Counters) -> None:
        self.name = name
        self.counters = counters
        self.failures_in_a_row = 0

    def failed(self, what: str, exc: BaseException) -> float:
        """Count a failure of ``what`` (``poll``, ``batch``); return the seconds to wait before the next try."""
        self.failures_in_a_row += 1
        self.counters.add("retries")
        delay = min(self.longest_s, self.first_s * 2 ** (self.failures_in_a_row - 1))
        level = logging.WARNING if self.failures_in_a_row == 1 else logging.DEBUG
        log.log(level, "%s: %s failed (%s: %s); retrying in %.1f s", self.name, what, type(exc).__name__, exc, delay)
        return delay

    def succeeded(self) -> None:
        """A batch went through: the next failure waits the shortest time again."""
        self.failures_in_a_row = 0
