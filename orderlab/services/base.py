"""The ``Service`` base: one role running in one thread.

The base owns the thread, the stop event, the state, the counters and the
clean-up; a role writes only its work, in the abstract hooks (:meth:`Service.loop`
here, or per batch in :class:`~orderlab.services.consumer.ConsumerService`).
The thread never sleeps blindly: it waits on its stop event, so ``stop()`` is
answered at once. Signal handlers belong to a process's ``main()``, never here.

A role is built from its declaration in a topology (:class:`~orderlab.topology.RoleSpec`):
the declaration says what it reads and writes; :attr:`Service.ports` holds
this run's names for them.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
import time
from typing import Any, Iterable

from ..settings import Settings
from ..topology import Ports, RoleSpec
from .outage import BrokerWatch, Outage

log = logging.getLogger(__name__)


class ServiceState(enum.Enum):
    """Where a service is in its life: NEW, then STARTING, RUNNING, STOPPING and STOPPED (or FAILED)."""
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
        """Add amount to the counter name (made at 0 if new)."""
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """Every counter's value now, in one consistent copy."""
        with self._lock:
            return dict(self._values)


def declared_counters(cls: type) -> tuple[str, ...]:
    """Every ``counter_names`` along ``cls``'s bases, the most basic first, each once.

    A base declares the counters every role of its kind keeps (a consumer's
    ``consumed``, ``commits``...), a role only its own: every role then
    reports the same shared columns from its first snapshot on.
    """
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        names.update(dict.fromkeys(vars(klass).get("counter_names", ())))
    return tuple(names)


class Service(abc.ABC):
    """A role in a thread: ``start()``, ``stop()``, ``with`` or ``run()``.

    Arguments: ``settings``; ``spec``, the role's declaration in its topology;
    ``name``, this worker's name in logs and snapshots (default: the role's
    name); ``worker``, its slot among the role's workers (0 for the first);
    ``instance``, the process it runs in when there are several (process mode,
    see :func:`orderlab.process.default_instance`).

    Subclasses write :meth:`loop` (return soon after :attr:`stopping` is set)
    and may override :meth:`setup` (make clients; it runs in the service's
    own thread, so a consumer is used by one thread only) and :meth:`close`.
    """

    counter_names: tuple[str, ...] = ()

    def __init__(self, settings: Settings, spec: RoleSpec, *, name: str | None = None, worker: int = 0,
                 instance: str | None = None) -> None:
        self.settings = settings
        self.spec = spec
        self.ports: Ports = spec.ports(settings)
        self.name = name or spec.name
        self.worker = worker
        self.instance = instance
        self.counters = Counters(*declared_counters(type(self)))
        self.outage = Outage(self.name)  # whether this worker has lost the broker (see check_broker)
        self.error: BaseException | None = None
        self._state = ServiceState.NEW
        self._state_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    @property
    def role(self) -> str:
        """The role's one name in its topology (``transactions``), shared by all its workers."""
        return self.spec.name

    # -- state -------------------------------------------------------------
    @property
    def state(self) -> ServiceState:
        """The service's state now (see :class:`ServiceState`)."""
        return self._state

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for: the work loop returns soon after."""
        return self._stop_event.is_set()

    @property
    def alive(self) -> bool:
        """Whether the service's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a stop request; True when stopping."""
        return self._stop_event.wait(seconds)

    def not_started(self, what: str) -> ServiceError:
        """The error for using ``what`` (a client) before :meth:`start` made it, or after it was closed."""
        return ServiceError(f"{self.name} has no {what}: it is {self._state.value} (call start() first)")

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
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)  # short joins keep the main thread responsive to signals
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _main(self) -> None:
        watch: BrokerWatch | None = None
        try:
            self.setup()
            if type(self).check_broker is not Service.check_broker:
                watch = BrokerWatch(self.name, self.check_broker).start()
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
            if watch is not None:
                watch.stop()
            try:
                self.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: error while closing: %s", self.name, exc)
            with self._state_lock:
                self._state = ServiceState.FAILED if self.error is not None else ServiceState.STOPPED
            self._ready.set()  # a failed setup: start() raises only once the service is closed and FAILED

    # -- what a role writes ------------------------------------------------
    def setup(self) -> None:
        """Make clients. Runs in the service's own thread."""

    @abc.abstractmethod
    def loop(self) -> None:
        """The work; return soon after :attr:`stopping` becomes true (wait with :meth:`wait`)."""

    def close(self) -> None:
        """Release clients. Runs in the service's own thread, even after a failure."""

    def check_broker(self) -> None:
        """Report symptoms of a lost broker to :attr:`outage`; called twice a second from a thread of its own
        while the service runs (so also while its own thread waits for the broker)."""

    def gauges(self) -> dict[str, int]:
        """Figures that go up and down (not counters), shown with them: the orders waiting for acks."""
        return {}

    def status(self) -> dict[str, Any]:
        """Name, state, error, every counter and gauge: one row of a snapshot."""
        return {"name": self.name, "state": self._state.value, "error": None if self.error is None else str(self.error),
                **self.counters.snapshot(), **self.gauges()}


def stop_all(services: Iterable[Service], timeout_s: float) -> list[Service]:
    """Stop every service at once (each drains its batch and commits) and
    return those still running after ``timeout_s``.

    Stopping them one after the other would let the later ones keep
    consuming while the earlier ones drain, and would add the drain times up.
    """
    services = list(services)
    deadline = time.monotonic() + timeout_s
    stoppers = [
        threading.Thread(target=service.stop, args=(timeout_s,), name=f"stop-{service.name}", daemon=True)
        for service in services
    ]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join(max(0.0, deadline - time.monotonic()) + 0.5)
    return [service for service in services if service.alive]
