"""A worker pool: the running workers of one role, in one consumer group.

The pool starts workers, scales them up and down, replaces crashed ones in
their slot, and crashes one on request (for lessons and chaos runs). Workers
that stopped or crashed are kept as ``retired``, so their counters still
count in snapshots: a role's totals never go backwards.
"""

from __future__ import annotations

import threading
from typing import Callable

from .limits import MAX_WORKERS
from .services import Service

# builds a new (not started) worker for a slot
WorkerFactory = Callable[[int], Service]


class WorkerPool:
    """The workers of ``role``, made by ``build(slot)``; at most ``limit`` at once."""

    def __init__(self, role: str, build: WorkerFactory, *, limit: int = MAX_WORKERS) -> None:
        self.role = role
        self._build = build
        self.limit = limit
        self.workers: list[Service] = []
        self.retired: list[Service] = []
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.workers)

    @property
    def every_worker(self) -> list[Service]:
        """Running and retired workers: whose counters make the role's totals."""
        with self._lock:
            return self.workers + self.retired

    def scale(self, count: int) -> int:
        """Run ``count`` workers: start new ones in free slots, or stop the newest. Returns the count."""
        if not 1 <= count <= self.limit:
            raise ValueError(f"{self.role} workers must be between 1 and {self.limit}, got {count}")
        with self._lock:
            while len(self.workers) < count:
                worker = self._build(self._free_slot())
                worker.start()
                self.workers.append(worker)
            while len(self.workers) > count:
                worker = self.workers.pop()
                worker.stop()
                self.retired.append(worker)
            return len(self.workers)

    def _free_slot(self) -> int:
        used = {worker.worker for worker in self.workers}
        return next(slot for slot in range(self.limit) if slot not in used)

    def crash(self, index: int = 0, *, after_send: bool = True, min_records: int = 1) -> Service:
        """Make worker ``index`` die at its next batch (of at least ``min_records``) without committing."""
        with self._lock:
            if not 0 <= index < len(self.workers):
                raise IndexError(f"{self.role} has {len(self.workers)} worker(s); there is no worker {index}")
            worker = self.workers[index]
            crash = getattr(worker, "crash", None)
            if crash is None:
                raise TypeError(f"{worker.name} is not a consumer worker: it cannot be crashed mid-batch")
            crash(after_send=after_send, min_records=min_records)
            return worker

    def replace_dead(self) -> int:
        """Start a new worker, in the same slot, for each one that ended; returns how many."""
        with self._lock:
            replaced = 0
            for position, worker in enumerate(list(self.workers)):
                if not worker.alive:
                    self.retired.append(worker)
                    fresh = self._build(worker.worker)
                    fresh.start()
                    self.workers[position] = fresh
                    replaced += 1
            return replaced

    def holds_all(self, partitions: int) -> bool:
        """Whether the workers' shares add up to ``partitions``, every worker that can have some holding some.

        Right after a start or a rescale, a member that joined late holds
        nothing until the group's next rebalance, which then takes partitions
        away from the others mid-work (their next commit is refused and the
        batch is done again). This is true once that has happened. Each worker
        reports what it held after its last poll: while one has taken its new
        share and another not yet given its old one back, the shares add up
        to more than there are partitions.
        """
        with self._lock:
            held = [getattr(worker, "partitions", 0) for worker in self.workers]
        return sum(held) == partitions and sum(1 for count in held if count > 0) >= min(len(held), partitions)

    def retire_all(self) -> list[Service]:
        """Take every running worker out of the pool (to be stopped by the caller); they count on as retired."""
        with self._lock:
            workers, self.workers = self.workers, []
            self.retired.extend(workers)
            return workers
