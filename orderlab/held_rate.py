"""The highest order rate this machine held in its last classroom run.

``orderlab bench --classroom`` measures the Lab as a class sees it (JupyterLab
and a browser on the same machine as the broker and the kernel) and saves its
whole result as ``<cache dir>/classroom.json``; the control room reads the
held rate back and shows it beside the rate slider, so a teacher knows before
class which settings this machine can keep up.

A missing or unreadable file is no error here: the control room then says
nothing about it (a broken cache file must not stop a lesson).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .settings import cache_dir

FILE_NAME = "classroom.json"


@dataclass(frozen=True)
class HeldRate:
    """What the control room needs of a saved classroom run."""

    held_per_s: float  # the highest step held; 0 when none was
    bare_pipeline_per_s: float | None
    measured_at: float  # unix time the run ended
    load_before: str = ""  # the machine's load average when it started ("15.20/14.00/12.00")


def held_rate_path(env: Mapping[str, str] | None = None) -> Path:
    return Path(cache_dir(env)) / FILE_NAME


def save_result(result: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write the bench's result (its JSON dict) where :func:`load_held_rate` finds it; returns the path.

    Written to a temporary file first and renamed: a control room reading it
    meanwhile sees the old result or the new one, never half of one.
    """
    target = path or held_rate_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {**result, "measured_at": result.get("measured_at", time.time())}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(body, indent=2), encoding="utf-8")
    os.replace(temporary, target)
    return target


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def load_held_rate(path: Path | None = None) -> HeldRate | None:
    """The saved classroom run's held rate; None when there is none, or the file is not one the bench wrote."""
    source = path or held_rate_path()
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    held, measured_at = _number(data.get("held_per_s")), _number(data.get("measured_at"))
    if held is None or held < 0 or measured_at is None:
        return None
    machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
    return HeldRate(held, _number(data.get("bare_pipeline_per_s")), measured_at, str(machine.get("load_before", "")))


def held_line(held: HeldRate | None) -> str:
    """``this machine held 1,000 orders/s in its last classroom run (14 Jun 2026)``; "" when unknown."""
    if held is None:
        return ""
    when = time.strftime("%d %b %Y", time.localtime(held.measured_at))
    if held.held_per_s <= 0:
        return f"this machine held none of the rates of its last classroom run ({when})"
    return f"this machine held {held.held_per_s:,.0f} orders/s in its last classroom run ({when})"
