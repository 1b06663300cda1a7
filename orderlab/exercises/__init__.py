"""Exercises: checks a student's answer must pass, with a hint until it does.

A lesson's exercise is three cells: the answer, blank (``answer = ...``, with
a TODO comment); the check, ``check("01.hot_key", answer, ...)``, which raises
:class:`NotYet` with a friendly hint while the answer is blank or wrong (the
cell carries nbval's ``raises-exception`` tag, so a stored notebook keeps its
exercises blank); and, in the Solutions section at the end, the worked answer
followed by the same check, which then passes.

Every check is registered here with a wrong answer and a way to compute the
right one from the facts it is given, so ``tests/unit/test_exercises.py``
runs each check three ways (blank, wrong, solution) without a broker. The
facts are what the lesson measured (a partition count, a lag table); the
check compares the answer with what those facts imply, never with a stored
value.

In a notebook kernel, a :class:`NotYet` shows as one line (the hint), not a
traceback: :func:`install_hint_display` registers that with IPython, and
``orderlab.exercises`` calls it on import.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Exercise", "NotYet", "a_number", "check", "exercise", "is_blank", "registry", "whole_number"]


class NotYet(AssertionError):
    """The answer is blank or not right yet; the message is the hint."""


def is_blank(answer: Any) -> bool:
    """``...`` or ``None``: what an answer cell ships with."""
    return answer is Ellipsis or answer is None


def whole_number(answer: Any, what: str) -> int:
    """``answer`` if it is an int (a bool is not one, though Python says so), else a hint naming ``what``."""
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYet(f"give {what} as a whole number, not a {type(answer).__name__}")
    return answer


def a_number(answer: Any, what: str) -> float:
    """``answer`` as a float if it is an int or a float (not a bool), else a hint naming ``what``."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise NotYet(f"give {what} as a number, not a {type(answer).__name__}")
    return float(answer)


# A check: (answer, **facts) -> the line to print when it passes; raises NotYet otherwise.
Check = Callable[..., str]


@dataclass(frozen=True)
class Exercise:
    """One registered check, with what the three-way test needs.

    ``facts``: example facts, as the lesson would measure them; ``wrong``: an
    answer a student might give that must fail; ``solution``: the right
    answer for given facts (how the Solutions section computes it).
    """

    key: str
    run: Check
    hint: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    wrong: Any = None
    solution: Callable[..., Any] = lambda **facts: None


_REGISTRY: dict[str, Exercise] = {}


def exercise(key: str, *, hint: str, facts: Mapping[str, Any] | None = None, wrong: Any,
             solution: Callable[..., Any]) -> Callable[[Check], Check]:
    """Register the decorated check under ``key`` (``"NN.name"``, NN the lesson's number).

    ``hint`` is what a blank answer is told: where to look, never the answer.
    """

    def register(run: Check) -> Check:
        if key in _REGISTRY:
            raise ValueError(f"exercise {key!r} is registered twice")
        _REGISTRY[key] = Exercise(key, run, hint, dict(facts or {}), wrong, solution)
        return run

    return register


def registry() -> dict[str, Exercise]:
    """Every exercise of every lesson module in this package, by key."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(_REGISTRY)


def check(key: str, answer: Any, **facts: Any) -> None:
    """Run exercise ``key`` on ``answer``; prints ``✓ ...`` when right, raises :class:`NotYet` with a hint when not."""
    found = registry().get(key)
    if found is None:
        raise KeyError(f"no exercise {key!r}; the lessons have {', '.join(sorted(registry()))}")
    if is_blank(answer):
        raise NotYet(f"not answered yet: {found.hint}")
    print(f"✓ {found.run(answer, **facts)}")


def install_hint_display() -> bool:
    """In an IPython kernel, show a :class:`NotYet` as its hint alone, without the traceback; True if installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False

    def show_hint(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> None:
        shell.showtraceback((etype, value, tb), exception_only=True)

    shell.set_custom_exc((NotYet,), show_hint)
    return True


install_hint_display()
