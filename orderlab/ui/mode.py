"""Test mode: the same lessons, shorter runs.

``ORDERLAB_TEST_MODE=1`` (set by ``notebooks/conftest.py`` for nbval and by
the browser test) makes the lessons place fewer orders and watch for fewer
seconds. Cells, prose and the outputs nbval compares stay the same, so a
stored notebook checks in either mode. The variable is read in
:func:`orderlab.settings.in_test_mode`, like every other.
"""

from __future__ import annotations

from typing import Mapping, TypeVar

from ..settings import TEST_MODE_VARIABLE, in_test_mode

__all__ = ["TEST_MODE_VARIABLE", "in_test_mode", "pick"]

T = TypeVar("T")


def pick(normal: T, test: T, env: Mapping[str, str] | None = None) -> T:
    """``normal`` in class, ``test`` under test mode."""
    return test if in_test_mode(env) else normal


def lesson_seconds(seconds: float, env: Mapping[str, str] | None = None) -> float:
    """How long a lesson holds a setting or watches: ``seconds`` in class; under test mode
    60 % of it, at least 3 s (and never longer than asked). Lessons pass the class-time value."""
    if not in_test_mode(env):
        return seconds
    return min(seconds, max(3.0, 0.6 * seconds))
