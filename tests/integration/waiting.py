"""A bounded wait shared by the integration tests."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; True when it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
