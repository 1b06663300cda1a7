"""Keep log records out of notebook cells.

Python's last-resort logging handler writes warnings to stderr, and in a
kernel a background thread's stderr lands in whichever cell runs at the
time. :func:`capture_logs` puts a handler on the root logger that keeps the
recent lines in memory instead; the control room shows the latest one.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogBuffer(logging.Handler):
    """Keeps the last ``capacity`` formatted records."""

    def __init__(self, capacity: int = 200, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        self._lines: deque[tuple[bool, str]] = deque(maxlen=capacity)
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).splitlines()[0]
        except Exception:  # noqa: BLE001 - a bad record must not reach stderr either
            line = f"{record.levelname} {record.name}: (unformattable message)"
        # worth a student's attention: orderlab's own warnings, and errors from anyone
        # (kafka-python warns about things like a slow selector task, which is noise here)
        notable = record.name.startswith("orderlab") or record.levelno >= logging.ERROR
        with self._lines_lock:
            self._lines.append((notable, line))

    def lines(self) -> list[str]:
        with self._lines_lock:
            return [line for _notable, line in self._lines]

    def last(self, *, notable_only: bool = False) -> str:
        """The latest line (of the notable ones only, if asked)."""
        with self._lines_lock:
            for notable, line in reversed(self._lines):
                if notable or not notable_only:
                    return line
            return ""

    def clear(self) -> None:
        with self._lines_lock:
            self._lines.clear()


_installed: LogBuffer | None = None
_install_lock = threading.Lock()


def capture_logs(level: int = logging.WARNING) -> LogBuffer:
    """Install (once) and return the buffer that receives every log record at ``level`` or above.

    Python warnings are routed into logging too, so a thread's warning does
    not appear in a cell either.
    """
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = LogBuffer(level=level)
            logging.getLogger().addHandler(_installed)
            logging.captureWarnings(True)
        return _installed
