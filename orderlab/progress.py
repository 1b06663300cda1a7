"""A one-line progress bar for long CLI work (on stderr, redrawn in place on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str = "", *, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._interactive = getattr(self.stream, "isatty", lambda: False)()

    def update(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        # redraw at most 10 times a second; off a terminal, a line every 2 s
        if now - self._last_draw < (0.1 if self._interactive else 2.0) and done < self.total:
            return
        self._last_draw = now
        fraction = min(1.0, done / self.total)
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {fraction:4.0%} {now - self._started:5.1f}s {detail}"
        if self._interactive:
            self.stream.write("\r" + line[:200].ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._interactive:
            self.stream.write("\n")
            self.stream.flush()
