"""The durable ledger: payments taken and e-mails sent, in SQLite.

It is what makes the side effects idempotent across restarts: the
transactions role charges an order only if the ledger has no payment for its
id, and the e-mail role sends only if no e-mail is recorded for it. The
``gateway_charges`` table stands for the card network: one row for every
charge ever made, so a double charge would show up there, not be hidden by
a primary key. A trigger writes it with each approved payment row, in the
same statement.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from typing import Any, Callable, Iterable

from .events import Order, PaymentResult
from .settings import Settings, SettingsError

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    order_id TEXT PRIMARY KEY,
    approved INTEGER NOT NULL,
    reason TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    processed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_charges (
    charge_no INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    charged_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_charges_order ON gateway_charges(order_id);
-- the card network is charged when, and only when, an approved payment row is written
CREATE TRIGGER IF NOT EXISTS charge_approved_payment AFTER INSERT ON payments WHEN NEW.approved
BEGIN
    INSERT INTO gateway_charges (order_id, payment_id, amount_cents, charged_at)
    VALUES (NEW.order_id, NEW.payment_id, NEW.amount_cents, NEW.processed_at);
END;
CREATE TABLE IF NOT EXISTS emails (
    order_id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    sent_at REAL NOT NULL
);
"""


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
FIX = "point ORDERLAB_DB_URL at sqlite:///path/to/ledger.db in a folder you can write"


class LedgerLocationError(SettingsError):
    """The ledger cannot be kept where the settings put it; one line naming the setting and the path."""


LOCK_WAIT_S = 30.0  # how long a connection waits for another one's lock before "database is locked"
ROWS_PER_INSERT = 100  # rows in one INSERT statement; 100 × 6 values stays under SQLite's oldest cap of 999


def insert_rows(db: sqlite3.Connection, insert: str, rows: list[tuple[object, ...]]) -> None:
    """``insert`` (``"INSERT INTO t"`` or ``"INSERT INTO t (a, b)"``) of ``rows``, up to ROWS_PER_INSERT in one statement.

    Why not ``executemany``: the sqlite3 module lets go of the GIL around
    every row's step, and in a process whose other threads are busy (the
    Lab's, a notebook kernel's) each row then waits up to the 5 ms switch
    interval to get it back (see :meth:`Ledger.settle`). One statement for
    many rows is one step.
    """
    if not rows:
        return
    row_marks = "(" + ",".join("?" * len(rows[0])) + ")"
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        db.execute(f"{insert} VALUES {','.join([row_marks] * len(chunk))}", [value for row in chunk for value in row])


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for the lock like every other statement.

    Why a loop: SQLite answers the journal-mode switch with SQLITE_BUSY at
    once, without calling the busy handler that ``timeout`` installs, while
    another connection holds the file, so two processes opening a fresh
    ledger together (two transactions workers starting at the same moment)
    had one of them fail with "database is locked".
    """
    deadline = time.monotonic() + LOCK_WAIT_S
    pause_s = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.2)


def _held_too_long(path: str, setting: str | None) -> LedgerLocationError:
    """Another process kept the file locked past LOCK_WAIT_S: not a bad location, but still one line with a fix."""
    return LedgerLocationError(
        f"the ledger at {path} stayed locked by another process for {LOCK_WAIT_S:.0f} s; stop the other orderlab "
        f"process that uses it, or point {setting or 'ORDERLAB_DB_URL'} at another file"
    )


def _location_error(path: str, problem: str, setting: str | None) -> LedgerLocationError:
    where = f"cannot keep the ledger at {path}: {problem}"
    return LedgerLocationError(f"{setting}: {where}; {FIX}" if setting else where)


def prepare_location(path: str, setting: str | None = None) -> None:
    """Make sure a ledger can live at ``path``, creating its folder if need be.

    Checked before anything is created, each a :class:`LedgerLocationError`
    naming ``setting`` (the variable that chose the path, e.g.
    ``ORDERLAB_DB_URL=sqlite:///x/l.db``) and the path: a component of the
    path that is a file; a folder to create right under the filesystem root
    (``sqlite:////newdir/l.db``: a top-level folder is the administrator's to
    make, and usually a slip for the relative ``sqlite:///newdir/l.db``); a
    folder that cannot be created or written; the path itself a folder; a
    file there that is not an SQLite database. ``:memory:`` needs nothing.
    """
    if path == ":memory:":
        return
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise _location_error(path, "it is a folder, not a database file", setting)
    folder = os.path.dirname(path)
    existing, missing = folder, []
    while not os.path.lexists(existing):  # also false below a file ("afile/dir": not a directory)
        missing.append(existing)
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise _location_error(path, f"{existing} is a file, not a folder", setting)
    if missing and os.path.dirname(existing) == existing:
        raise _location_error(
            path, f"{missing[-1]} does not exist, and orderlab does not create folders at the filesystem root", setting,
        )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise _location_error(path, f"cannot create the folder {folder}: {exc.strerror or exc}", setting) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _location_error(path, f"cannot write in the folder {folder}", setting)
    if not os.path.exists(path):
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise _location_error(path, "the file there cannot be written", setting)
    # Asked of SQLite, not read with open(): closing a descriptor of our own
    # would drop every POSIX lock this process holds on the file, those of
    # its other open ledgers included (SQLite keeps its descriptors open).
    probe: sqlite3.Connection | None = None
    try:
        probe = sqlite3.connect(f"file:{path}", uri=True, timeout=LOCK_WAIT_S)
        probe.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise _held_too_long(path, setting) from None
        problem = "the file there is not an SQLite database" if _not_a_database(path) else f"SQLite cannot use it: {exc}"
        raise _location_error(path, problem, setting) from None
    finally:
        if probe is not None:
            probe.close()


def _not_a_database(path: str) -> bool:
    """Whether ``path`` is a non-empty file without SQLite's header (only once SQLite has refused it).

    Read only after SQLite refused the file, when no connection of this
    process can hold it: closing this descriptor drops every POSIX lock the
    process has on the file, and another process then takes a live
    database's write-ahead log for its own to checkpoint and delete.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:
        return False
    return bool(header) and header != SQLITE_HEADER  # an empty file is a new database to SQLite


class Ledger:
    """One SQLite database, one connection per thread (sqlite3 objects are not shared).

    An unusable location (see :func:`prepare_location`) is a
    :class:`LedgerLocationError` from the constructor, before anything is
    written; :meth:`from_settings` names the setting in it.
    """

    def __init__(self, path: str, *, setting: str | None = None) -> None:
        self.path = path
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if path == ":memory:":
            # A throw-away ledger. Not SQLite's shared-cache memory database:
            # its table locks fail at once ("database table is locked") when
            # several workers write; a temporary file waits on the lock instead.
            self._scratch = tempfile.TemporaryDirectory(prefix="orderlab-ledger-")
            path = os.path.join(self._scratch.name, "ledger.db")
        prepare_location(path, setting)
        # the database file itself (for ":memory:", the temporary one), which another process may open too
        self.file = os.path.abspath(path)
        self._uri = f"file:{self.file}"
        self._local = threading.local()
        keepalive: sqlite3.Connection | None = None
        try:
            keepalive = self._connect()
            keepalive.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if keepalive is not None:
                keepalive.close()
            if self._scratch is not None:
                self._scratch.cleanup()
            if "locked" in str(exc):
                raise _held_too_long(self.file, setting) from None
            # what the checks cannot see: a damaged file, a full disk, a file system SQLite cannot lock on
            raise _location_error(os.path.abspath(path), f"SQLite cannot use it: {exc}", setting) from None
        self._keepalive = keepalive

    @classmethod
    def from_settings(cls, settings: Settings) -> "Ledger":
        """The ledger at ``settings.db_path``; an unusable location names the setting that chose it."""
        return cls(settings.db_path, setting=settings.db_setting)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._uri, uri=True, timeout=LOCK_WAIT_S, isolation_level=None,
                                     check_same_thread=False)
        try:
            _switch_to_wal(connection)
        except sqlite3.Error:
            connection.close()
            raise
        # NORMAL in WAL mode survives a process crash; only an OS crash can
        # lose the last transactions, which Kafka would then redeliver.
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @property
    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
        self._keepalive.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    # -- payments ------------------------------------------------------------
    def settle(self, orders: Iterable[Order], decide: Callable[[Order], PaymentResult]) -> list[tuple[PaymentResult, bool]]:
        """Pay each order at most once; returns ``(result, replayed)`` per order.

        ``replayed`` is True when the ledger already had a payment for that
        order id (a redelivered record): its earlier result is returned and
        nothing is charged.

        The orders the ledger has no payment for are decided first, outside
        any transaction: the decisions wait for the (simulated) card network,
        and several workers wait in parallel. Then one ``INSERT OR IGNORE``
        writes them (per :data:`ROWS_PER_INSERT`), and in the same statement
        the trigger ``charge_approved_payment`` charges the card network for
        each payment row that was written, so a payment another worker wrote
        meanwhile stays, and this worker's decision for it is dropped, never
        charged, and reported as replayed.

        Why no ``BEGIN IMMEDIATE`` around a look-up and the inserts: the
        sqlite3 module lets go of the GIL at every statement, and in a busy
        process (the Lab's threads, a notebook's kernel) each one then waits
        up to the 5 ms switch interval to get it back while the transaction
        holds the file's write lock. The e-mail relay, in a process of its
        own, waited for that lock most of the time in a classroom run and
        fell behind; one statement holds the lock only inside SQLite.
        """
        batch = list(orders)
        known = self._payments_among(list(dict.fromkeys(order.order_id for order in batch)))
        decided: dict[str, PaymentResult] = {}
        payments: list[tuple[object, ...]] = []
        for order in batch:
            if order.order_id in known or order.order_id in decided:
                continue
            result = decided[order.order_id] = decide(order)
            payments.append(
                (order.order_id, int(result.approved), result.reason, result.payment_id, order.total_cents, result.processed_at)
            )
        insert_rows(self._db, "INSERT OR IGNORE INTO payments", payments)
        standing = {**known, **self._payments_of_others(list(decided.values()))}
        results: list[tuple[PaymentResult, bool]] = []
        for order in batch:
            earlier = standing.get(order.order_id)
            if earlier is not None:
                results.append((earlier, True))
                continue
            mine = standing[order.order_id] = decided[order.order_id]  # the same id again in this batch is a replay
            results.append((mine, False))
        return results

    def _payments_of_others(self, mine: list[PaymentResult]) -> dict[str, PaymentResult]:
        """The payments standing for the orders of ``mine`` that are not ``mine`` (another worker wrote first), by order id.

        Asked that way round because nearly every payment is this worker's:
        the answer is then empty, where reading every row back costs one
        GIL hand-back each.
        """
        found: dict[str, PaymentResult] = {}
        for start in range(0, len(mine), 250):  # two values per payment: 500 bound parameters at most
            chunk = mine[start:start + 250]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                "SELECT order_id, approved, reason, payment_id, processed_at FROM payments "
                f"WHERE order_id IN ({marks}) AND payment_id NOT IN ({marks})",
                [result.order_id for result in chunk] + [result.payment_id for result in chunk],
            ):
                found[row[0]] = PaymentResult(row[0], bool(row[1]), row[2], row[3], row[4])
        return found

    def _payments_among(self, order_ids: list[str]) -> dict[str, PaymentResult]:
        """The payments already made for any of ``order_ids``, by order id."""
        return {
            row[0]: PaymentResult(row[0], bool(row[1]), row[2], row[3], row[4])
            for row in self._rows_among("SELECT order_id, approved, reason, payment_id, processed_at FROM payments", order_ids)
        }

    def paid_count(self, order_ids: Iterable[str] | None = None) -> int:
        """How many orders have a payment (approved or declined), among ``order_ids`` or in all."""
        return self._count("payments", order_ids)

    def payment(self, order_id: str) -> PaymentResult | None:
        """The payment recorded for ``order_id`` (approved or declined), or None if it was never settled."""
        return self._payments_among([order_id]).get(order_id)

    def charge_count(self, order_ids: Iterable[str] | None = None) -> int:
        return self._count("gateway_charges", order_ids)

    def double_charged(self, order_ids: Iterable[str] | None = None) -> int:
        """How many orders the card network charged more than once."""
        return self._count_repeats("gateway_charges", order_ids)

    # -- e-mails -------------------------------------------------------------
    def emailed(self, order_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM emails WHERE order_id = ?", (order_id,)).fetchone() is not None

    def emailed_among(self, order_ids: Iterable[str]) -> set[str]:
        """The ids among ``order_ids`` that already have an e-mail: one query per 500 ids, not one per id."""
        return {order_id for (order_id,) in self._rows_among("SELECT order_id FROM emails", list(dict.fromkeys(order_ids)))}

    def record_email(self, order_id: str, message_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO emails VALUES (?, ?, ?)", (order_id, message_id, time.time())
        )

    def record_emails(self, sent: Iterable[tuple[str, str]]) -> None:
        """Record several sent e-mails ``(order_id, message_id)``: one statement (one WAL write) per ROWS_PER_INSERT, not one each."""
        now = time.time()
        rows: list[tuple[object, ...]] = [(order_id, message_id, now) for order_id, message_id in sent]
        insert_rows(self._db, "INSERT OR IGNORE INTO emails", rows)  # each statement its own transaction

    def email_record(self, order_id: str) -> tuple[str, float] | None:
        """``(message_id, recorded_at)`` of the e-mail recorded for ``order_id``, or None if none is."""
        row = self._db.execute("SELECT message_id, sent_at FROM emails WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def emailed_ids(self) -> list[str]:
        return [order_id for (order_id,) in self._db.execute("SELECT order_id FROM emails")]

    def email_count(self, order_ids: Iterable[str] | None = None) -> int:
        return self._count("emails", order_ids)

    # -- helpers -------------------------------------------------------------
    def _rows_among(self, select: str, order_ids: list[str]) -> list[tuple[Any, ...]]:
        """``select ... WHERE order_id IN (...)``: one query per 500 ids (SQLite caps bound parameters), not one per id."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(order_ids), 500):
            chunk = order_ids[start:start + 500]
            rows.extend(self._db.execute(f"{select} WHERE order_id IN ({','.join('?' * len(chunk))})", chunk))
        return rows

    def _count(self, table: str, order_ids: Iterable[str] | None) -> int:
        if order_ids is None:
            return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        wanted = set(order_ids)
        return sum(1 for (order_id,) in self._db.execute(f"SELECT order_id FROM {table}") if order_id in wanted)

    def _count_repeats(self, table: str, order_ids: Iterable[str] | None) -> int:
        rows = self._db.execute(f"SELECT order_id FROM {table} GROUP BY order_id HAVING count(*) > 1").fetchall()
        if order_ids is None:
            return len(rows)
        wanted = set(order_ids)
        return sum(1 for (order_id,) in rows if order_id in wanted)
