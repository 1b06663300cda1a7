"""`orderlab clean` also finds lesson ledgers whose runs left nothing on the broker, unless a process has them open."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from orderlab import cleanup
from orderlab.cleanup import LeftOver, orphaned_ledgers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="open files are read from /proc")


def test_only_a_ledger_with_no_run_on_the_broker_and_no_process_holding_it_is_orphaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "lesson_ledger_dir", lambda: tmp_path)
    for name in ("lesson05-aaaaaaaa.db", "lesson05-aaaaaaaa.db-wal", "lesson06-cccccccc.db", "notes.db"):
        (tmp_path / name).write_bytes(b"")
    held = sqlite3.connect(tmp_path / "lesson07-bbbbbbbb.db")  # a lesson running in this process
    held.execute("create table t (x)")
    try:
        on_broker = [LeftOver("-lesson06-cccccccc", ("order_details-lesson06-cccccccc",), (), ())]
        assert [run.suffix for run in orphaned_ledgers(on_broker)] == ["-lesson05-aaaaaaaa"]
    finally:
        held.close()
    assert sorted(run.suffix for run in orphaned_ledgers(on_broker)) == ["-lesson05-aaaaaaaa", "-lesson07-bbbbbbbb"]


def test_removing_an_orphan_takes_its_wal_and_shm_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "lesson_ledger_dir", lambda: tmp_path)
    for ending in (".db", ".db-wal", ".db-shm"):
        (tmp_path / f"lesson05-aaaaaaaa{ending}").write_bytes(b"")
    (orphan,) = orphaned_ledgers([])
    cleanup._delete(None, orphan)  # type: ignore[arg-type] - nothing of it is on the broker, so the admin is not used
    assert list(tmp_path.iterdir()) == []
