"""What a topic keeps: time-based retention (old segments deleted) and compaction (the latest record per key).

Lesson 10 watches both happen within a minute, on topics of the run's own
(named with its suffix, so the last cell removes them with the rest):

- :class:`RetentionWatch`: a topic with a short ``retention.ms`` and a small
  ``segment.ms``, a writer that keeps appending, and the topic's first
  offset read about every second. A log is a chain of segment files; only
  a closed segment can expire, as a whole, once its newest record is older
  than ``retention.ms``; the broker looks for such segments every
  ``log.retention.check.interval.ms``, a broker-wide setting (5 minutes by
  default; 5 s on ``orderlab broker``, see :mod:`orderlab.broker.config`).
- :class:`CustomersTopic`: a compacted topic of customer profiles keyed by
  customer id. The log cleaner keeps the latest record of each key in the
  closed segments; a tombstone (a record whose value is null) removes its
  key, and is itself dropped ``delete.retention.ms`` after a cleaning.
- :func:`latest_profiles` and :func:`customers_left`: the table a reader
  rebuilds from such a log (pure, tested without a broker).

Every wait here is bounded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from kafka import TopicPartition

from .clients import make_admin, make_consumer, make_producer
from .settings import Settings, in_test_mode
from .ui.livetable import LiveTable

# Lesson 10's retention topic: segments roll every 5 s and expire 20 s after their newest record.
RETENTION_MS = 20_000
SEGMENT_MS = 5_000
# Its customers topic: segments roll after 2 s, the cleaner takes any log with 1% dirty records,
# and a tombstone goes 1 s after the cleaning that kept it.
COMPACTED_CONFIG: Mapping[str, str] = {
    "cleanup.policy": "compact",
    "segment.ms": "2000",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "1000",
    "min.compaction.lag.ms": "0",
}
RETENTION_CHECK_SETTING = "log.retention.check.interval.ms"
CLEANER_BACKOFF_SETTING = "log.cleaner.backoff.ms"


def run_topic(settings: Settings, name: str) -> str:
    """``name`` with the run's suffix (``ticks-lesson10-1a2b3c4d``), so the run's cleanup removes it."""
    return name + settings.topic_suffix


def create_topic(settings: Settings, topic: str, configs: Mapping[str, str], *, timeout_s: float = 30.0) -> str:
    """One partition, one replica per live broker up to 3, with ``configs``; returns when the topic is known."""
    from .topics import create_missing_topics

    admin = make_admin(settings)
    try:
        create_missing_topics(admin, {topic: 1}, timeout_s=timeout_s, configs=configs)
    finally:
        admin.close()
    return topic


def broker_setting(settings: Settings, name: str) -> str | None:
    """The value of broker setting ``name`` on the first broker that answers (None if it has none)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = make_admin(settings)
    try:
        broker = str(admin.describe_cluster()["brokers"][0]["broker_id"])
        described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, broker)], config_filter="all")
    finally:
        admin.close()
    entry = described.get("broker", {}).get(broker, {}).get(name)
    return None if entry is None else entry.get("value")


def broker_ms(settings: Settings, name: str) -> int | None:
    """A broker setting in milliseconds, as an int (None if the broker has none)."""
    value = broker_setting(settings, name)
    return None if value is None else int(value)


# -- retention ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offsets:
    """A one-partition topic's first offset (the oldest record still kept) and next offset, at a time."""

    seconds: float  # since the watch started
    first: int
    next: int

    @property
    def kept(self) -> int:
        return self.next - self.first


class RetentionWatch:
    """A topic with a short ``retention.ms`` that a writer keeps appending to, and its first offset over time.

    ``start()`` creates the topic (``retention.ms``, ``segment.ms``) and
    starts writing ``rate`` records a second; :meth:`table` is a live view;
    :meth:`wait_for_deletions` waits (bounded) until the first offset has
    moved ``times`` times, each move an expired segment deleted; ``stop()``
    stops the writer.
    """

    def __init__(self, settings: Settings, name: str = "ticks", *, retention_ms: int = RETENTION_MS,
                 segment_ms: int = SEGMENT_MS, rate: float = 5.0) -> None:
        if not 0 < segment_ms < retention_ms:
            raise ValueError(f"segment_ms must be > 0 and below retention_ms, got {segment_ms} and {retention_ms}")
        if not rate > 0:
            raise ValueError(f"rate must be > 0 records/s, got {rate}")
        self.settings = settings
        self.topic = run_topic(settings, name)
        self.retention_ms, self.segment_ms, self.rate = retention_ms, segment_ms, rate
        self.observations: list[Offsets] = []
        self.written = 0
        self._lock = threading.Lock()
        self._reader: Any = None
        self._producer: Any = None
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._began = 0.0

    @property
    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "segment.ms": str(self.segment_ms)}

    def start(self) -> "RetentionWatch":
        """Create the topic and start appending to it (once)."""
        if self._writer is not None:
            return self
        create_topic(self.settings, self.topic, self.config)
        self._producer = make_producer(self.settings, linger_ms=0)
        self._reader = make_consumer(self.settings, None)
        self._began = time.monotonic()
        self._writer = threading.Thread(target=self._write, name="orderlab-retention-writer", daemon=True)
        self._writer.start()
        return self

    def _write(self) -> None:
        interval = 1.0 / self.rate
        while not self._stopping.wait(interval):
            self._producer.send(self.topic, value=f"tick {self.written}".encode())
            self.written += 1

    def sample(self) -> Offsets:
        """Read the first and next offsets now (and keep them in :attr:`observations`)."""
        if self._reader is None:
            raise RuntimeError("the watch is not started: call start() first")
        partition = TopicPartition(self.topic, 0)
        with self._lock:
            first = self._reader.beginning_offsets([partition])[partition]
            end = self._reader.end_offsets([partition])[partition]
            seen = Offsets(round(time.monotonic() - self._began, 1), first, end)
            self.observations.append(seen)
        return seen

    def moves(self) -> list[Offsets]:
        """The observations at which the first offset had moved since the one before: each a segment deleted."""
        with self._lock:
            seen = list(self.observations)
        return [later for earlier, later in zip(seen, seen[1:]) if later.first > earlier.first]

    def table(self, interval_s: float = 1.0) -> LiveTable:
        """A live view: the topic's first offset, next offset and records kept, read about every second."""

        def read() -> tuple[pd.DataFrame, str]:
            now = self.sample()
            frame = pd.DataFrame(
                [{"first offset": now.first, "next offset": now.next, "records kept": now.kept,
                  "records written": self.written}],
                index=pd.Index([self.topic], name="topic"),
            )
            moved = len(self.moves())
            return frame, f"{now.seconds:.0f} s since the first record · first offset moved {moved} time(s)"

        return LiveTable(read, title=f"{self.topic}: retention.ms={self.retention_ms}, segment.ms={self.segment_ms}",
                         interval_s=interval_s,
                         placeholder=f"{self.topic}: a live table of its first and next offsets (run the notebook to watch it)")

    def wait_for_deletions(self, times: int = 2, timeout_s: float = 120.0, *, poll_s: float = 0.5) -> list[Offsets]:
        """Wait until the first offset moved ``times`` times (once under test mode), or ``timeout_s``; the moves seen."""
        wanted = 1 if in_test_mode() else times
        deadline = time.monotonic() + timeout_s
        while len(self.moves()) < wanted and time.monotonic() < deadline:
            self.sample()
            time.sleep(poll_s)
        return self.moves()

    def stop(self) -> None:
        """Stop writing and close the clients (the topic stays, for the run's cleanup). Idempotent."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(5)
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
            if self._reader is not None:
                self._reader.close(autocommit=False)
                self._reader = None


# -- compaction -----------------------------------------------------------------------------------------

Profile = dict[str, Any]
Write = tuple[str, Profile | None]  # (customer id, profile), or (customer id, None): a tombstone
Record = tuple[int, str, Profile | None]  # (offset, customer id, profile or None), as read back

CITIES = ("Lisbon", "Utrecht", "Leuven", "Graz", "Aarhus", "Turku", "Bologna", "Brno")


def profile_writes(customers: int = 5, versions: int = 3, *, deleted: Sequence[int] = (3,)) -> list[Write]:
    """The same every run: ``versions`` profiles of each of ``customers`` customers, round by round, then a
    tombstone (``None``) for each customer number in ``deleted``.

    Each version moves the customer to another city, so the latest profile
    is easy to tell apart from the older ones.
    """
    writes: list[Write] = []
    for version in range(1, versions + 1):
        for number in range(1, customers + 1):
            customer = f"c-{number:04d}"
            city = CITIES[(number + version) % len(CITIES)]
            writes.append((customer, {"customer_id": customer, "city": city, "version": version}))
    writes += [(f"c-{number:04d}", None) for number in deleted]
    return writes


def latest_profiles(records: Iterable[Write]) -> pd.DataFrame:
    """The table a reader rebuilds from a log, in order: the latest profile per customer, tombstones removing."""
    table: dict[str, Profile] = {}
    for key, value in records:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    rows = [{"customer": key, **{k: v for k, v in value.items() if k != "customer_id"}} for key, value in sorted(table.items())]
    return pd.DataFrame(rows).set_index("customer") if rows else pd.DataFrame(index=pd.Index([], name="customer"))


def customers_left(records: Iterable[Write]) -> int:
    """How many customers the rebuilt table holds: keys whose last record is not a tombstone."""
    last: dict[str, bool] = {}
    for key, value in records:
        last[key] = value is not None
    return sum(last.values())


def log_frame(records: Iterable[Record]) -> pd.DataFrame:
    """``(offset, key, value)`` records as a table: one row per record, a tombstone's value shown as such."""
    def shown(value: Profile | None) -> str:
        if value is None:
            return "(tombstone: deleted)"
        return ", ".join(f"{name}={field}" for name, field in value.items() if name != "customer_id")

    rows = [{"offset": offset, "customer": key, "value": shown(value)} for offset, key, value in records]
    return pd.DataFrame(rows, columns=["offset", "customer", "value"]).set_index("offset")


class CustomersTopic:
    """A compacted topic of customer profiles, keyed by customer id, with the lesson's small cleaner settings."""

    def __init__(self, settings: Settings, name: str = "customers", *, configs: Mapping[str, str] = COMPACTED_CONFIG) -> None:
        self.settings = settings
        self.topic = run_topic(settings, name)
        self.configs = dict(configs)
        self.segment_ms = int(self.configs.get("segment.ms", "604800000"))

    def create(self) -> "CustomersTopic":
        create_topic(self.settings, self.topic, self.configs)
        return self

    def write(self, writes: Sequence[Write]) -> int:
        """Send each ``(customer, profile or None)`` in order, keyed by customer, and wait for the broker's acks."""
        producer = make_producer(self.settings, linger_ms=0)
        try:
            futures = [
                producer.send(self.topic, key=key.encode(), value=None if value is None else json.dumps(value).encode())
                for key, value in writes
            ]
            for future in futures:
                future.get(timeout=30)
        finally:
            producer.close(timeout=5)
        return len(futures)

    def close_segment(self, signup: Write) -> None:
        """Wait out ``segment.ms``, then write ``signup``: the broker rolls a new segment at that append, and the
        one holding the earlier writes becomes cleanable (the active segment never is)."""
        time.sleep(self.segment_ms / 1000.0 + 0.5)
        self.write([signup])

    def read(self, timeout_s: float = 30.0) -> list[Record]:
        """Every record now in the topic, from its first offset: ``(offset, key, value)``, a tombstone's value None."""
        consumer = make_consumer(self.settings, None)
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            end = consumer.end_offsets([partition])[partition]
            found: list[Record] = []
            deadline = time.monotonic() + timeout_s
            while consumer.position(partition) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self.topic} did not reach offset {end} within {timeout_s:.0f} s")
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        value = None if record.value is None else json.loads(record.value)
                        found.append((record.offset, record.key.decode(), value))
            return found
        finally:
            consumer.close(autocommit=False)

    def wait_for_compaction(self, timeout_s: float = 90.0, *, poll_s: float = 1.0) -> tuple[bool, list[Record]]:
        """Wait (bounded) until no customer appears twice in the log; ``(compacted, the log then)``."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.read()
            keys = [key for _, key, _ in records]
            if len(keys) == len(set(keys)):
                return True, records
            if time.monotonic() >= deadline:
                return False, records
            time.sleep(poll_s)
