"""One bounded wait: poll a condition until it holds, or fail with what did not happen.

Lessons, the cluster helpers and the classroom bench wait on things outside
Python (a leader elected, a replica back in sync, a browser cell that ran)
that give no callback; each wait is bounded and names what it waited for,
so a slow machine ends in one line, not a hang.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def poll_until(condition: Callable[[], Any], timeout_s: float, what: str, *, poll_s: float = 0.1,
               error: type[Exception] = TimeoutError) -> Any:
    """Call ``condition`` every ``poll_s`` until it returns something truthy, and return that.

    After ``timeout_s`` raises ``error("<what> did not happen within <timeout_s> s")``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(poll_s)
