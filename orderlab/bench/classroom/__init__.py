"""``orderlab bench --classroom``: what a class sees, measured in one run.

The bare pipeline's sustained rate (as ``orderlab bench`` measures it),
then lesson 05 in this venv's JupyterLab and the system's Chromium, in
normal mode, the rate slider moved up through the page step by step until
a step is not held. Each step reports its rates, every group's lag growth,
order → e-mail p50 and p99, chart frames per second as they arrive in the
browser, and the CPU and memory of the kernel, the Jupyter server, the
broker and the browser; a screenshot per step goes to ``artifacts/classroom/``.
The result is saved for the control room (:mod:`orderlab.held_rate`),
which shows the highest rate held beside its slider.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...held_rate import held_rate_path, save_result
from ...options import UserError, settings_from
from .errors import ClassroomError
from .plan import MIN_HOLD_S, ClassroomPlan
from .runner import FAILED
from .report import ClassroomReport, StepResult, format_table

__all__ = ["ClassroomError", "ClassroomPlan", "ClassroomReport", "StepResult", "cmd_classroom", "format_table"]

ARTIFACTS = Path("artifacts") / "classroom"


def cmd_classroom(args: argparse.Namespace) -> int:
    from .runner import run_classroom

    if args.plot:
        raise UserError("--plot draws the standard bench's figures; the classroom run's are its table, --json and screenshots")
    plan = ClassroomPlan.tiny() if args.quick else ClassroomPlan.standard()
    if args.orders is not None:
        plan = plan.with_bare_orders(args.orders)
    if args.hold is not None:
        if args.hold < MIN_HOLD_S:
            raise UserError(f"--hold {args.hold:g} is too short to judge a step: give at least {MIN_HOLD_S:g} seconds")
        plan = plan.with_hold(args.hold)
    if args.steps is not None:
        plan = plan.with_steps(args.steps)
    artifacts = Path(args.artifacts) if args.artifacts else ARTIFACTS
    try:
        from playwright.sync_api import Error as BrowserError
    except ImportError:  # LessonPage says what to install
        BrowserError = ClassroomError  # type: ignore[misc,assignment]
    try:
        report = run_classroom(settings_from(args), plan, artifacts)
    except (ClassroomError, BrowserError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        shot = artifacts / FAILED
        raise UserError(f"classroom bench: {lines[0]}" + (f" (the page as it was: {shot})" if shot.exists() else "")) from None
    if plan.finds_the_held_rate:  # otherwise the saved result stays the last full run's
        saved = held_rate_path()
        report = report.saved(str(saved))  # the saved file says where it is, as the printed report does
        save_result(report.as_dict(), saved)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_table(report))
    return 0
