"""The ``Service`` base: one role running in one thread.

The base owns the thread, the stop event, the state and the clean-up; a role
writes only its work (:meth:`Service.loop`, or per batch for consumers in
:class:`~orderlab.services.consumer.ConsumerService`). The thread never
sleeps blindly: it waits on its stop event, so ``stop()`` is answered at once.
Signal handlers belong to a process's ``main()``, never here.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Any

from ..settings import Settings

log = logging.getLogger(__name__)


class ServiceState(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class ServiceError(RuntimeError):
    """A service was used in a way its state does not allow, or it failed to start."""


class Counters:
    """Live counters a role keeps; safe to read from any thread."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(names, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class Service:
    """A role in a thread: ``start()``, ``stop()``, ``with`` or ``run()``.

    Subclasses override :meth:`setup` (make clients; runs in the service's
    thread, so consumers are used by one thread only), :meth:`loop` (return
    when :attr:`stopping` is set) and :meth:`close`.
    """

    role: str = "service"
    counter_names: tuple[str, ...] = ()

    def __init__(self, settings: Settings, *, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or self.role
        self.counters = Counters(*self.counter_names)
        self.error: BaseException | None = None
        self._state = ServiceState.NEW
        self._state_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    # -- state -------------------------------------------------------------
    @property
    def state(self) -> ServiceState:
        return self._state

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a stop request; True when stopping."""
        return self._stop_event.wait(seconds)

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float | None = None) -> "Service":
        """Start the thread and return once :meth:`setup` finished (or raise its error).

        Calling it on a running service does nothing; a stopped service cannot
        be started again (make a new one), and says so.
        """
        with self._state_lock:
            if self._state in (ServiceState.STARTING, ServiceState.RUNNING):
                return self
            if self._state is not ServiceState.NEW:
                raise ServiceError(f"{self.name} is {self._state.value}; make a new {type(self).__name__} to run it again")
            self._state = ServiceState.STARTING
            self._thread = threading.Thread(target=self._main, name=f"orderlab-{self.name}", daemon=True)
            self._thread.start()
        bound = self.settings.connect_timeout_s + 30 if timeout is None else timeout
        if not self._ready.wait(bound):
            self.stop()
            raise ServiceError(f"{self.name} did not start within {bound:.0f} s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to finish its current work, commit and close; wait up to ``timeout``.

        Returns True when the thread ended in time. Safe to call twice, or on a
        service that never started.
        """
        with self._state_lock:
            if self._state is ServiceState.NEW:
                self._state = ServiceState.STOPPED
                return True
            if self._state in (ServiceState.STARTING, ServiceState.RUNNING):
                self._state = ServiceState.STOPPING
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", self.name, timeout)
                return False
        return True

    def run(self) -> None:
        """Process mode: run until :meth:`stop` is called (e.g. from a signal handler in ``main()``)."""
        self.start()
        while self.alive:
            assert self._thread is not None
            self._thread.join(0.5)  # short joins keep the main thread responsive to signals
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            self.setup()
            with self._state_lock:
                if self._state is ServiceState.STARTING:
                    self._state = ServiceState.RUNNING
            self.started_at = time.time()
            self._ready.set()
            self.loop()
        except BaseException as exc:  # noqa: BLE001 - kept for the caller, the thread must not die silently
            self.error = exc
            log.error("%s failed: %s", self.name, exc, exc_info=not isinstance(exc, ConnectionError))
        finally:
            self._ready.set()
            try:
                self.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: error while closing: %s", self.name, exc)
            with self._state_lock:
                self._state = ServiceState.FAILED if self.error is not None else ServiceState.STOPPED

    # -- what a role writes ------------------------------------------------
    def setup(self) -> None:
        """Make clients. Runs in the service's own thread."""

    def loop(self) -> None:
        """The work; return soon after :attr:`stopping` becomes true."""
        self._stop_event.wait()

    def close(self) -> None:
        """Release clients. Runs in the service's own thread, even after a failure."""

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "state": self._state.value, "error": None if self.error is None else str(self.error), **self.counters.snapshot()}
