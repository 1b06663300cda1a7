"""A background thread that calls one function about every ``interval_s`` seconds.

Modelled on ``rich.live``'s refresh thread: it waits on a stop event (so
``stop()`` is answered at once, never after a sleep), ``start()`` and
``stop()`` are idempotent, and :meth:`Refresher.refresh` runs the same work
synchronously for tests and for a last frame after stopping. An error in the
work goes to ``on_error`` and the thread keeps going: it never prints.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class Refresher:
    def __init__(
        self,
        work: Callable[[], None],
        interval_s: float = 1.0,
        *,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "orderlab-refresher",
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.work = work
        self.interval_s = interval_s
        self.on_error = on_error
        self.name = name
        self.ticks = 0
        self.errors = 0
        self._lock = threading.Lock()  # one refresh at a time (thread and manual calls)
        self._state_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Refresher":
        with self._state_lock:
            if self.running:
                return self
            self._stop_event = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to end and wait up to ``timeout``; True when it ended."""
        with self._state_lock:
            thread, self._thread = self._thread, None
            self._stop_event.set()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def refresh(self) -> bool:
        """Do the work once, now; True when it succeeded."""
        with self._lock:
            try:
                self.work()
                self.ticks += 1
                return True
            except Exception as exc:  # noqa: BLE001 - reported to on_error, never raised into a cell
                self.errors += 1
                if self.on_error is not None:
                    try:
                        self.on_error(exc)
                    except Exception:  # noqa: BLE001
                        log.exception("%s: error handler failed", self.name)
                else:
                    log.warning("%s: %s", self.name, exc)
                return False

    def _run(self, stop: threading.Event) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            self.refresh()
            # keep a steady beat: the next tick is due interval_s after the last
            # was due, but never sooner than 10 ms from now
            next_at = max(next_at + self.interval_s, time.monotonic() + 0.01)
            stop.wait(next_at - time.monotonic())

    def __enter__(self) -> "Refresher":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
