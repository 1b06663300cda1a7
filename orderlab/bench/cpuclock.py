"""CPU time spent while a bench phase runs: this process's, and the whole machine's.

Why the machine's as well: not all of the pipeline's work happens in this
process. The broker (a JVM), the SMTP relay and the mail catcher are
processes of their own, and on a laptop they share its cores with the roles.
CPU time per order measures work, not waiting: multiplied by a rate in
orders/s it says how many cores that rate takes, which is what tells a slow
program from a full machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def machine_busy_s(stat: Path = PROC_STAT) -> float | None:
    """CPU seconds every core of the machine spent busy since boot; ``None`` where Linux's /proc/stat is missing.

    The first line of /proc/stat counts clock ticks by state: user, nice,
    system, idle, iowait, irq, softirq, steal, then guest and guest_nice,
    which user and nice already include. Busy is everything but idle and
    iowait.
    """
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
        ticks = [int(value) for value in fields[1:9]]
        ticks_per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if fields[:1] != ["cpu"] or len(ticks) < 5:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / ticks_per_s


@dataclass(frozen=True)
class CpuSpent:
    process_s: float  # this process, all threads
    machine_s: float | None  # every process on the machine (None where it cannot be read)


class CpuClock:
    """Started when made; :meth:`read` gives the CPU time spent since."""

    def __init__(self, stat: Path = PROC_STAT) -> None:
        self._stat = stat
        self._process = time.process_time()
        self._machine = machine_busy_s(stat)

    def read(self) -> CpuSpent:
        machine_now = machine_busy_s(self._stat)
        machine = machine_now - self._machine if machine_now is not None and self._machine is not None else None
        return CpuSpent(time.process_time() - self._process, machine)


def per_order_us(seconds: float | None, orders: int) -> float:
    """Microseconds of CPU per order; NaN when there is nothing to divide."""
    return seconds * 1e6 / orders if seconds is not None and orders else float("nan")
