"""Noticing, and saying, that a role has lost the broker.

kafka-python rides out a broker that is away without raising anything a
role sees: polls come back empty, sends wait in the producer. A teacher was
told nothing while the broker was down. So each role has an :class:`Outage`:
its symptoms (no connection to any broker, acknowledgements stalled, a batch
failing for a broker reason) are reported to it by cause, and it logs one
warning when the broker is lost and one line when it is back, with the time
it was away. :attr:`Outage.since` is what a snapshot shows.

A :class:`BrokerWatch` thread looks at a role's clients twice a second: the
role's own thread may be blocked meanwhile (waiting for acknowledgements,
in a transaction), which is exactly when the broker is away.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

GRACE_S = 2.0  # a symptom lasting less is a blip (a reconnect), not an outage
WATCH_EVERY_S = 0.5


class Outage:
    """Whether one role has lost the broker, since when; it logs once when lost and once when back.

    ``failing(cause, why)`` reports a symptom (again on every check while it
    lasts); the broker counts as lost once a symptom has lasted
    :data:`GRACE_S` (``at_once``: at the first report, for a symptom that
    already took its time, like a batch that timed out). ``fine(cause)`` ends
    a symptom; the broker is back when none is left. ``detail``: a text added
    to both lines (the order source's orders waiting). Safe from any thread.
    """

    def __init__(self, name: str, *, detail: Callable[[], str] | None = None, grace_s: float = GRACE_S,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 logger: logging.Logger = log) -> None:
        self.name = name
        self.detail = detail
        self.grace_s = grace_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = logger
        self._lock = threading.Lock()
        self._symptoms: dict[str, tuple[float, float]] = {}  # cause -> (clock, wall clock) when it began
        self._lost_at: tuple[float, float] | None = None
        self.outages = 0  # how many times the broker was lost

    @property
    def lost(self) -> bool:
        """Whether the broker counts as lost now."""
        return self._lost_at is not None

    @property
    def since(self) -> float | None:
        """The wall-clock time the broker was first missed, while it counts as lost; else None."""
        lost_at = self._lost_at
        return None if lost_at is None else lost_at[1]

    def failing(self, cause: str, why: str, *, at_once: bool = False, lasted_s: float = 0.0) -> None:
        """Report a symptom of ``cause`` (``why`` says what, for the warning); ``lasted_s``: it began that long ago."""
        with self._lock:
            now = self._clock()
            began = self._symptoms.setdefault(cause, (now - lasted_s, self._wall_clock() - lasted_s))
            if self._lost_at is not None or not (at_once or now - began[0] >= self.grace_s):
                return
            self._lost_at = min(self._symptoms.values())
            self.outages += 1
            self._log.warning("%s: lost the broker (%s)%s", self.name, why, self._detail())

    def fine(self, cause: str) -> None:
        """The symptom of ``cause`` is over; the broker is back once no symptom is left."""
        with self._lock:
            if self._symptoms.pop(cause, None) is None or self._symptoms or self._lost_at is None:
                return
            away_s = self._clock() - self._lost_at[0]
            self._lost_at = None
            self._log.info("%s: broker back after %.1f s%s", self.name, away_s, self._detail())

    def _detail(self) -> str:
        if self.detail is None:
            return ""
        try:
            text = self.detail()
        except Exception as exc:  # noqa: BLE001 - a detail must never stop the line
            text = f"({exc})"
        return f"; {text}" if text else ""


def broker_connections(client: Any) -> int | None:
    """How many connections a kafka-python 3.0 producer or consumer holds open to brokers.

    kafka-python has no public call for it; its connection manager keeps
    them (``_manager._conns``, a producer's behind ``_sender._client``).
    None when it cannot tell (another client version, a test's stand-in):
    no symptom is then reported.
    """
    manager = getattr(client, "_manager", None)
    if manager is None:
        manager = getattr(getattr(getattr(client, "_sender", None), "_client", None), "_manager", None)
    connections = getattr(manager, "_conns", None)
    if not isinstance(connections, dict):
        return None
    return sum(1 for connection in list(connections.values()) if getattr(connection, "connected", False) is True)


def report_connections(outage: Outage, client: Any, *, matters: bool = True) -> None:
    """Report "no connection to any broker" to ``outage`` while ``client`` has none and it ``matters``.

    (A producer with nothing to send may close its idle connections: only
    orders waiting to be acknowledged make a missing connection a symptom.)
    """
    connections = broker_connections(client) if matters else None
    if connections == 0:
        outage.failing("connection", "no connection to any broker")
    elif connections is not None or not matters:
        outage.fine("connection")


class BrokerWatch:
    """A daemon thread that calls ``check`` every :data:`WATCH_EVERY_S` until :meth:`stop`."""

    def __init__(self, name: str, check: Callable[[], None]) -> None:
        self._check = check
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"orderlab-watch-{name}", daemon=True)

    def start(self) -> "BrokerWatch":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(WATCH_EVERY_S):
            try:
                self._check()
            except Exception as exc:  # noqa: BLE001 - a check that breaks must not end silently either
                log.debug("broker check failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread (it ends within one interval; not waited for)."""
        self._stop.set()
