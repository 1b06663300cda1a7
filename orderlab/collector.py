"""The cyclic garbage collector while roles run in this process: :func:`roles_running`.

Why it is tuned at all: every record a role reads or sends makes tracked
objects (kafka-python's records and futures, the events, the role's
batches), nearly all freed by reference counting moments later. CPython
starts a young collection every 700 net allocations, though, and a full
one after a hundred of those; each holds the GIL, so every role stops
meanwhile. Measured on the bench's pipeline (20,000 orders, 2 CPUs): 1,163
young, 105 middle and 9 full collections took 1.0-1.4 s of the run's 7-8 s
of CPU, the full ones 45-80 ms each. With a young threshold of 50,000 it was
5 collections and 0.1 s, and the pipeline's CPU per order fell from 311-329
to 284-287 µs.

What stays the same: objects in reference cycles are still collected,
only later (after 50,000 allocations instead of 700), and everything alive
when the roles started is frozen out of the collections (``gc.freeze``), as
the Lab did before. Nested uses (two Labs in one process) keep the setting
until the last one ends, which restores the thresholds found at the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

YOUNG_THRESHOLD = 50_000  # net allocations of tracked objects between young collections (CPython's default: 700)
MIDDLE_THRESHOLD = 20  # young collections between middle ones (default 10)
OLD_THRESHOLD = 10  # middle collections between full ones (the default)

_lock = threading.Lock()
_users = 0
_previous: tuple[int, int, int] | None = None


def relax() -> None:
    """Freeze what is alive now and collect rarely (see the module docstring); undone by :func:`restore`."""
    global _users, _previous
    with _lock:
        if _users == 0:
            _previous = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
        _users += 1
        gc.freeze()


def restore() -> None:
    """Undo one :func:`relax`; the last one restores the thresholds and unfreezes."""
    global _users, _previous
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0:
            if _previous is not None:
                gc.set_threshold(*_previous)
            _previous = None
            gc.unfreeze()


@contextlib.contextmanager
def roles_running() -> Iterator[None]:
    """:func:`relax` for the duration of the block (or, as a decorator, of each call)."""
    relax()
    try:
        yield
    finally:
        restore()
