"""An unusable ledger location is one ``bad setting`` line naming ORDERLAB_DB_URL and the path, never a traceback.

The commands check it before they connect to Kafka, so these tests need no
broker: the address they are given answers nowhere, and a command that did
not check first would fail on that instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orderlab.ledger import SQLITE_HEADER, Ledger, LedgerLocationError, prepare_location
from orderlab.settings import Settings, SettingsError

LINUX_PROC = Path("/proc/1").is_dir()


def _cases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (ORDERLAB_DB_URL, what the error says); relative paths are below ``tmp_path``, the commands' folder."""
    (tmp_path / "afile").write_text("a file, not a folder\n")
    (tmp_path / "notes.db").write_text("some notes, not a database\n")
    (tmp_path / "adir").mkdir()
    top = f"/orderlab-test-{uuid.uuid4().hex[:8]}"
    cases = {
        "a file in the path": ("sqlite:///afile/dir/l.db", f"{tmp_path / 'afile'} is a file, not a folder"),
        "a folder at the filesystem root": (f"sqlite:///{top}/l.db", f"{top} does not exist, and orderlab does not create "
                                            "folders at the filesystem root"),
        "not an SQLite file": ("sqlite:///notes.db", "the file there is not an SQLite database"),
        "a folder, not a file": ("sqlite:///adir", "it is a folder, not a database file"),
    }
    if LINUX_PROC:
        cases["a folder that cannot be created"] = ("sqlite:////proc/nonexistent/l.db",
                                                    "cannot create the folder /proc/nonexistent: No such file or directory")
        cases["a folder that cannot be written"] = ("sqlite:////proc/1/l.db", "cannot write in the folder /proc/1")
    return cases


CASE_NAMES = ["a file in the path", "a folder at the filesystem root", "not an SQLite file", "a folder, not a file",
              "a folder that cannot be created", "a folder that cannot be written"]


def _case(tmp_path: Path, name: str) -> tuple[str, str]:
    cases = _cases(tmp_path)
    if name not in cases:
        pytest.skip("needs Linux's /proc")
    return cases[name]


COMMANDS = {"demo": ["demo", "--orders", "10"], "run transactions": ["run", "transactions"], "run email": ["run", "email"]}


def _assert_one_bad_setting_line(err: str, url: str, problem: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"orderlab: bad setting: ORDERLAB_DB_URL={url}: cannot keep the ledger at "), err
    assert problem in lines[0], err
    assert lines[0].endswith("point ORDERLAB_DB_URL at sqlite:///path/to/ledger.db in a folder you can write"), err


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("command", COMMANDS)
def test_demo_and_run_end_in_one_bad_setting_line(command: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from orderlab.cli import main

    url, problem = _case(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDERLAB_DB_URL", url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(COMMANDS[command]) == 2
    _assert_one_bad_setting_line(capsys.readouterr().err, url, problem)


def test_as_processes_too(tmp_path: Path) -> None:
    """The same from a shell: the process's whole stderr is the one line, and its exit code 2."""
    url, problem = _case(tmp_path, "a file in the path")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "ORDERLAB_DB_URL": url,
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    running = {
        command: subprocess.Popen([sys.executable, "-m", "orderlab", *argv], cwd=tmp_path, env=env, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for command, argv in COMMANDS.items()
    }  # all three at once: each is a Python start-up, and none of them waits for anything
    for command, process in running.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2 and not out, (command, err)
        _assert_one_bad_setting_line(err, url, problem)


def test_no_folder_is_made_at_the_root(tmp_path: Path) -> None:
    url, _ = _cases(tmp_path)["a folder at the filesystem root"]
    path = url[len("sqlite:///"):]
    with pytest.raises(LedgerLocationError):
        Ledger(path)
    assert not os.path.exists(os.path.dirname(path))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_ledger_itself_refuses_with_the_setting_named(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, problem = _case(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as caught:  # a SettingsError: the CLI prints it as "bad setting"
        Ledger.from_settings(Settings(db_url=url))
    message = str(caught.value)
    assert message.startswith(f"ORDERLAB_DB_URL={url}: ") and problem in message and "\n" not in message


def test_without_a_setting_the_path_alone_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LedgerLocationError) as caught:
        prepare_location(str(tmp_path / "afile" / "l.db"))
    assert str(caught.value) == f"cannot keep the ledger at {tmp_path / 'afile' / 'l.db'}: {tmp_path / 'afile'} is a file, not a folder"


def test_the_default_ledger_names_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path / "afile"))
    with pytest.raises(LedgerLocationError, match=f"^ORDERLAB_CACHE_DIR={tmp_path / 'afile'} .*is a file, not a folder"):
        Ledger.from_settings(Settings())


def test_a_damaged_database_is_one_line_too(tmp_path: Path) -> None:
    damaged = tmp_path / "l.db"
    damaged.write_bytes(SQLITE_HEADER + b"\xff" * 200)  # the header, then no valid page
    with pytest.raises(LedgerLocationError, match="SQLite cannot use it: "):
        Ledger(str(damaged), setting="ORDERLAB_DB_URL=sqlite:///l.db")


def test_good_locations_are_prepared(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "ledger.db"
    ledger = Ledger(str(nested))  # folders below an existing one are made
    ledger.close()
    assert nested.is_file() and nested.read_bytes()[:16] == SQLITE_HEADER
    Ledger(str(nested)).close()  # an existing ledger opens again
    (tmp_path / "empty.db").write_bytes(b"")
    Ledger(str(tmp_path / "empty.db")).close()  # an empty file is a new database to SQLite
    prepare_location(":memory:")


def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    """Root writes in any folder whatever its mode, so as root the folder is /proc/self, which nobody writes in."""
    if os.geteuid() == 0:
        with pytest.raises(LedgerLocationError, match="cannot write in the folder /proc/self"):
            Ledger("/proc/self/l.db")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(LedgerLocationError, match="cannot write in the folder"):
            Ledger(str(locked / "l.db"))
    finally:
        locked.chmod(0o700)


def test_opening_a_second_ledger_keeps_the_first_ones_lock(tmp_path: Path) -> None:
    """POSIX drops every lock a process holds on a file when it closes any descriptor of that file.

    Reading the header with ``open()`` while another ledger of this process
    had the file open dropped that ledger's shared lock, so another process
    (the relay child records accepted e-mails in the same file) closing its
    connection believed it was the last one, checkpointed and deleted the
    write-ahead log under the live connection: "database disk image is
    malformed". The check leaves reading the file to SQLite, which keeps
    its own descriptors open.
    """
    import subprocess
    import sys

    path = tmp_path / "l.db"
    wal = tmp_path / "l.db-wal"
    first = Ledger(str(path))
    try:
        first._db.execute("INSERT INTO emails VALUES ('ord-1', 'm-1', 0)")  # the write-ahead log now holds a frame
        second = Ledger(str(path))  # opening the file again must keep the first ledger's locks
        subprocess.run([sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
                        "'SELECT count(*) FROM emails').fetchall()", str(path)], check=True, timeout=60)
        # the other process closed while this one still had the file open: it must not have removed the log
        assert wal.exists()
        second.close()
    finally:
        first.close()


def _open_at_the_signal(path: str, start: "multiprocessing.synchronize.Barrier", answers: "multiprocessing.Queue[str]") -> None:
    start.wait()
    try:
        Ledger(path).close()
        answers.put("opened")
    except Exception as exc:  # the answer is what the test reads
        answers.put(repr(exc))


def test_processes_opening_a_fresh_ledger_together_all_open_it(tmp_path: Path) -> None:
    """Two transactions workers started together create the same ledger file at the same moment.

    SQLite answers the switch to write-ahead logging with "database is
    locked" at once, without waiting out the busy timeout, while another
    connection holds the new file; one worker died on it in a clean-clone
    run. The ledger waits for that lock like for any other.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")  # forked workers are ready at once, so they meet the file together
    for round_ in range(20):
        path = str(tmp_path / f"fresh-{round_}.db")
        start, answers = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_open_at_the_signal, args=(path, start, answers)) for _ in range(6)]
        for worker in workers:
            worker.start()
        results = [answers.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert results == ["opened"] * len(workers), f"round {round_}: {results}"


def test_a_ledger_held_locked_too_long_is_one_line_naming_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import orderlab.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "LOCK_WAIT_S", 0.2)
    path = tmp_path / "held.db"
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerLocationError) as refused:
            Ledger(str(path), setting="ORDERLAB_DB_URL")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(refused.value)
    assert "\n" not in message and "locked by another process" in message and "ORDERLAB_DB_URL" in message, message
