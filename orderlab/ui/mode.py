"""Test mode: the same lessons, shorter runs.

``ORDERLAB_TEST_MODE=1`` (set by ``notebooks/conftest.py`` for nbval and by
the browser test) makes the lessons place fewer orders and watch for fewer
seconds. Cells, prose and the outputs nbval compares stay the same, so a
stored notebook checks in either mode.
"""

from __future__ import annotations

import os
from typing import Mapping, TypeVar

TEST_MODE_VARIABLE = "ORDERLAB_TEST_MODE"

T = TypeVar("T")


def in_test_mode(env: Mapping[str, str] | None = None) -> bool:
    """True when ``ORDERLAB_TEST_MODE`` is set to a true value (1, true, yes, on)."""
    value = (os.environ if env is None else env).get(TEST_MODE_VARIABLE, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def pick(normal: T, test: T, env: Mapping[str, str] | None = None) -> T:
    """``normal`` in class, ``test`` under test mode."""
    return test if in_test_mode(env) else normal
