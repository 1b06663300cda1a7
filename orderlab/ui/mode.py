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
