"""CPU seconds and resident memory of the processes a class runs: kernel, Jupyter server, broker, browser.

Through psutil. The browser is every Chromium process under this one (the
browser, its GPU, network and renderer processes); its memory is the sum of
their resident sets, which counts a page two of them share twice: an upper
bound. The broker is the process listening on the bootstrap port, when that
is on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import psutil

MB = 2**20


@dataclass(frozen=True)
class ProcessUse:
    cpu_s: float | None  # over the window; None when the process could not be read
    rss_mb: float | None  # at the window's end
    processes: int


def browser_processes() -> list[psutil.Process]:
    """Chromium's processes among this process's descendants (Playwright's driver in between is not counted)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name().lower():
                found.append(child)
        except psutil.Error:
            continue
    return found


def process_tree(pid: int | None, *, children: bool = True) -> Callable[[], list[psutil.Process]]:
    """A finder of process ``pid`` and (with ``children``) its descendants now: a kernel's helpers count as the kernel."""

    def find() -> list[psutil.Process]:
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *(root.children(recursive=True) if children else ())]
        except psutil.Error:
            return []

    return find


def listening_process(port: int) -> psutil.Process | None:
    """The process listening on TCP ``port`` on this machine; None when there is none or it cannot be seen."""
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port and connection.pid:
                return psutil.Process(connection.pid)
    except (psutil.Error, OSError):
        return None
    return None


Finder = Callable[[], Iterable[psutil.Process]]


class ProcessWatch:
    """``watch.start()``, then ``watch.read()``: each group's CPU seconds since the start and resident memory now."""

    def __init__(self, groups: Mapping[str, Finder]) -> None:
        self.groups = dict(groups)
        self._started: dict[str, dict[tuple[int, float], float]] = {}

    @staticmethod
    def _cpu_by_process(processes: Iterable[psutil.Process]) -> dict[tuple[int, float], tuple[float, float]]:
        """{(pid, start time): (CPU seconds, resident MB)} of those still alive."""
        found = {}
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    found[(process.pid, process.create_time())] = (times.user + times.system, process.memory_info().rss / MB)
            except psutil.Error:
                continue
        return found

    def start(self) -> None:
        self._started = {name: {key: cpu for key, (cpu, _rss) in self._cpu_by_process(find()).items()}
                         for name, find in self.groups.items()}

    def read(self) -> dict[str, ProcessUse]:
        """A process that started meanwhile counts from 0; one that ended meanwhile is not counted."""
        used = {}
        for name, find in self.groups.items():
            now = self._cpu_by_process(find())
            if not now:
                used[name] = ProcessUse(None, None, 0)
                continue
            before = self._started.get(name, {})
            cpu = sum(cpu - before.get(key, 0.0) for key, (cpu, _rss) in now.items())
            used[name] = ProcessUse(round(cpu, 2), round(sum(rss for _cpu, rss in now.values()), 1), len(now))
        return used
