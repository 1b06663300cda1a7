"""Removing what runs left on a broker: their topics, consumer groups and ledgers.

Every Lab run names its topics and groups with a suffix of its own
(:func:`~orderlab.settings.new_run_suffix`: ``-lesson05-1a2b3c4d``,
``-demo-…``, ``-bench-…``), so what one run made can be found and removed
without touching another's. A run is left alone while any of its consumer
groups has members: a lesson open in another notebook keeps working.

A broker that collected thousands of leftover topics answers every metadata
request more slowly; :func:`remove_run` at the end of a run, and ``orderlab
clean`` for what crashed runs left, keep it small.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from .clients import make_admin
from .settings import Settings

# what new_run_suffix makes: "-<kind>-<8 hex digits>"
RUN_SUFFIX = re.compile(r"-([a-z][a-z0-9_]*)-([0-9a-f]{8})$")
_ACTIVE_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"}


def lesson_ledger_dir() -> Path:
    """Where lesson runs keep their ledgers (a temporary folder; a run's ledger goes with the run)."""
    return Path(tempfile.gettempdir()) / "orderlab-lessons"


@dataclass(frozen=True)
class LeftOver:
    """What one run left on the broker."""

    suffix: str  # "-lesson05-1a2b3c4d"
    topics: tuple[str, ...]
    groups: tuple[str, ...]
    active: tuple[str, ...]  # its groups that still have members

    @property
    def kind(self) -> str:
        """What made the run: ``lesson05``, ``demo``, ``bench``..."""
        match = RUN_SUFFIX.search(self.suffix)
        return match.group(1) if match else ""


def find_runs(admin: KafkaAdminClient, pattern: re.Pattern[str] = RUN_SUFFIX) -> list[LeftOver]:
    """Every run whose topics or groups are on the broker, by suffix."""
    topics: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    active: dict[str, list[str]] = {}
    for topic in admin.list_topics():
        match = pattern.search(topic.removesuffix(".dlq"))
        if match:
            topics.setdefault(match.group(0), []).append(topic)
    for group in admin.list_groups():
        match = pattern.search(group["group_id"])
        if match:
            groups.setdefault(match.group(0), []).append(group["group_id"])
            if group.get("group_state") in _ACTIVE_STATES:
                active.setdefault(match.group(0), []).append(group["group_id"])
    return [
        LeftOver(suffix, tuple(sorted(topics.get(suffix, ()))), tuple(sorted(groups.get(suffix, ()))),
                 tuple(sorted(active.get(suffix, ()))))
        for suffix in sorted(set(topics) | set(groups))
    ]


def _delete(admin: KafkaAdminClient, run: LeftOver) -> None:
    if run.groups:
        try:
            admin.delete_groups(list(run.groups))
        except KafkaError:
            pass  # a group that emptied a moment ago may still be settling; its topics go anyway
    if run.topics:
        admin.delete_topics(list(run.topics))
    for ending in (".db", ".db-wal", ".db-shm"):
        (lesson_ledger_dir() / f"{run.suffix.lstrip('-')}{ending}").unlink(missing_ok=True)


def _open_ledgers() -> set[Path] | None:
    """Lesson ledger files some process of this machine has open, from ``/proc/*/fd``; None where there is no ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    folder = str(lesson_ledger_dir())
    held: set[Path] = set()
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:  # the process is gone, or another user's
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile (the listing's own descriptor is one)
                continue
            if target.startswith(folder):
                held.add(Path(target))
    return held


def orphaned_ledgers(found: Iterable[LeftOver], pattern: re.Pattern[str] = RUN_SUFFIX) -> list[LeftOver]:
    """Lesson runs of which only the ledger is left: nothing of theirs on the broker, and no process has the file open.

    Why they happen: a lesson run that never reaches its last cell (a closed
    notebook, a dead kernel, a throw-away broker gone with its topics) keeps
    its ledger in the temp folder, and a run found by its topics alone is
    never found again. Where open files cannot be listed (no ``/proc``), none
    is called orphaned.
    """
    held = _open_ledgers()
    if held is None:
        return []
    on_broker = {run.suffix for run in found}
    orphans = {}
    for path in sorted(lesson_ledger_dir().glob("*.db*")):
        run_name = path.name.split(".db")[0]
        suffix = "-" + run_name
        if not pattern.search(suffix) or suffix in on_broker:
            continue
        files = [path.with_name(run_name + ending) for ending in (".db", ".db-wal", ".db-shm")]
        if not any(file in held for file in files):
            orphans[suffix] = LeftOver(suffix, (), (), ())
    return list(orphans.values())


def clean(settings: Settings, *, dry_run: bool = False, pattern: re.Pattern[str] = RUN_SUFFIX) -> list[tuple[LeftOver, bool]]:
    """Remove every finished run's topics, groups and lesson ledger; ``(run, removed)`` for each run found.

    Also the lesson ledgers whose runs left nothing on the broker and that
    no process has open (:func:`orphaned_ledgers`). Active runs are listed
    and left alone; with ``dry_run`` nothing is removed.
    """
    admin = make_admin(settings)
    try:
        found = find_runs(admin, pattern)
        found += orphaned_ledgers(found, pattern)
        results = []
        for run in found:
            removed = not run.active and not dry_run
            if removed:
                _delete(admin, run)
            results.append((run, removed))
        return results
    finally:
        admin.close()


def remove_run(settings: Settings, extra_topics: Iterable[str] = ()) -> int:
    """Remove this run's topics (those named with ``settings.topic_suffix``), groups and lesson ledger.

    For the last cell of a lesson and the end of ``orderlab demo``: call it
    once the run's roles are stopped. Returns how many topics were deleted.
    """
    suffix = settings.topic_suffix
    if not RUN_SUFFIX.search(suffix):
        raise ValueError(f"{suffix!r} is not a run's suffix (see new_run_suffix): refusing to delete shared topics")
    admin = make_admin(settings)
    try:
        runs = [run for run in find_runs(admin) if run.suffix == suffix]
        run = runs[0] if runs else LeftOver(suffix, (), (), ())
        topics = tuple(sorted(set(run.topics) | {t for t in extra_topics if t in set(admin.list_topics())}))
        _delete(admin, LeftOver(suffix, topics, run.groups, ()))
        return len(topics)
    finally:
        admin.close()
