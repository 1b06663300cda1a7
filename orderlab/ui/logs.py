"""Keep log records out of notebook cells.

Python's last-resort logging handler writes warnings to stderr, and in a
kernel a background thread's stderr lands in whichever cell runs at the
time. :func:`capture_logs` puts a handler on the root logger that keeps the
recent lines in memory instead; the control room shows the latest one, and a
lesson shows those since a moment (:meth:`LogBuffer.since`).

Besides warnings, it keeps the info lines of :data:`KEPT_AT_INFO`: a role
says at warning level that it lost the broker, and at info level that it is
back (``orderlab.services.outage``); a buffer with only the first would tell
half the story.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# loggers whose info lines are kept too (see the module docstring)
KEPT_AT_INFO: tuple[str, ...] = ("orderlab.services.outage",)


class LogBuffer(logging.Handler):
    """Keeps the last ``capacity`` formatted records, and apart from them the last ``capacity`` of orderlab's own.

    A broker that is away makes kafka-python log an error for every
    reconnect attempt of every client: kept in one queue, they pushed the
    roles' own lines (lost the broker, back) out of it within seconds.
    """

    def __init__(self, capacity: int = 200, level: int = logging.WARNING) -> None:
        super().__init__(min(level, logging.INFO))
        self.threshold = level
        self.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        # (when the record was made, unix time; notable; the line)
        self._lines: deque[tuple[float, bool, str]] = deque(maxlen=capacity)
        self._own: deque[tuple[float, bool, str]] = deque(maxlen=capacity)  # orderlab's loggers' only
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < self.threshold and record.name not in KEPT_AT_INFO:
            return
        try:
            line = self.format(record).splitlines()[0]
        except Exception:  # noqa: BLE001 - a bad record must not reach stderr either
            line = f"{record.levelname} {record.name}: (unformattable message)"
        own = record.name.startswith("orderlab")
        # worth a student's attention: orderlab's own warnings, and errors from anyone
        # (kafka-python warns about things like a slow selector task, which is noise here)
        entry = (record.created, own or record.levelno >= logging.ERROR, line)
        with self._lines_lock:
            self._lines.append(entry)
            if own:
                self._own.append(entry)

    def lines(self) -> list[str]:
        with self._lines_lock:
            return [line for _created, _notable, line in self._lines]

    def since(self, moment: float, *, own_only: bool = True) -> list[str]:
        """The lines of the records made at or after ``moment`` (unix time), oldest first: orderlab's own
        (kept apart, so never pushed out by other libraries' lines), or, unless ``own_only``, every one still kept."""
        with self._lines_lock:
            kept = self._own if own_only else self._lines
            return [line for created, _notable, line in kept if created >= moment]

    def last(self, *, notable_only: bool = False) -> str:
        """The latest line (of the notable ones only, if asked)."""
        with self._lines_lock:
            for _created, notable, line in reversed(self._lines):
                if notable or not notable_only:
                    return line
            return ""

    def clear(self) -> None:
        with self._lines_lock:
            self._lines.clear()
            self._own.clear()


_installed: LogBuffer | None = None
_install_lock = threading.Lock()


def capture_logs(level: int = logging.WARNING) -> LogBuffer:
    """Install (once) and return the buffer that receives every log record at ``level`` or above
    (and the info lines of :data:`KEPT_AT_INFO`).

    Python warnings are routed into logging too, so a thread's warning does
    not appear in a cell either.
    """
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = LogBuffer(level=level)
            logging.getLogger().addHandler(_installed)
            logging.captureWarnings(True)
            for name in KEPT_AT_INFO:
                logger = logging.getLogger(name)
                if logger.level == logging.NOTSET:  # not where someone chose a level on purpose
                    logger.setLevel(logging.INFO)
        return _installed
