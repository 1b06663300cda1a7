"""Keys, partitions and order (lesson 01): where keyed and unkeyed records
land, how one hot key skews a topic, and which keys move when a topic grows.

Kafka keeps records in order within a partition only. The default
partitioner (murmur2 of the key, modulo the partition count: see
:func:`orderlab.peek.partition_for_key`) sends every record of one key to
one partition, so the events of one order stay in order; records without a
key are spread over the partitions at random. The modulo is also why adding
partitions moves keys: ``hash % 6`` and ``hash % 8`` agree for only a quarter
of the hashes, and the records a key sent before the change stay where they
were.

The pure functions (:func:`key_moves`, :func:`events_by_key`,
:func:`customer_keys`) are tested without a broker; the ones that create,
grow, send to and read back a topic against a real one.
"""

from __future__ import annotations

import json
import random
import time
from typing import Iterable

import pandas as pd
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from .clients import make_admin
from .peek import partition_for_key
from .reconcile import read_to_end
from .settings import Settings

EVENT_COLUMNS = ["partition", "offset", "key", "order_id", "event", "customer_id"]


def topic_name(settings: Settings, base: str) -> str:
    """This run's name for ``base`` (``order_events`` → ``order_events-lesson01-1a2b3c4d``)."""
    return base + settings.topic_suffix


def led_partitions(settings: Settings, topic: str) -> int:
    """How many partitions of ``topic`` have a leader now (0 when the topic does not exist).

    A producer that fetches the topic's metadata while a new partition has no
    leader yet leaves that partition out of its random choice for unkeyed
    records until its next metadata refresh (minutes later), so the helpers
    here wait until every partition has one.
    """
    admin = make_admin(settings)
    try:
        described = admin.describe_topics([topic])
    except UnknownTopicOrPartitionError:
        return 0
    finally:
        admin.close()
    partitions = described[0].get("partitions", []) if described and not described[0].get("error_code") else []
    return sum(1 for partition in partitions if partition.get("leader_id", -1) >= 0)


def _wait_for_partitions(settings: Settings, topic: str, partitions: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while led_partitions(settings, topic) != partitions:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} does not show {partitions} partitions with a leader after {timeout_s:.0f} s")
        time.sleep(0.2)


def create_topic(settings: Settings, base: str, partitions: int, *, timeout_s: float = 30.0) -> str:
    """Create this run's topic ``base`` with ``partitions`` (idempotent); returns its name once the broker lists them all.

    Named with the run's suffix, so the lesson's last cell removes it with the run.
    """
    topic = topic_name(settings, base)
    admin = make_admin(settings)
    try:
        exists = topic in admin.list_topics()
        if not exists:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                exists = True  # made between the list and the create
    finally:
        admin.close()
    if exists and (found := led_partitions(settings, topic)) not in (0, partitions):
        raise ValueError(f"{topic} exists with {found} partitions, not {partitions}: grow_topic() adds partitions")
    _wait_for_partitions(settings, topic, partitions, timeout_s)
    return topic


def grow_topic(settings: Settings, topic: str, partitions: int, *, timeout_s: float = 30.0) -> int:
    """Give ``topic`` ``partitions`` partitions in all (Kafka can add partitions, never remove them); returns the count.

    Records already in the topic stay on the partitions they were written to.
    A producer made before the change keeps the old count until its next
    metadata refresh (kafka-python: ``metadata_max_age_ms``, 5 minutes), so
    make a new one to send with the new count.
    """
    now = led_partitions(settings, topic)
    if now == 0:
        raise ValueError(f"topic {topic} does not exist: create it first")
    if partitions < now:
        raise ValueError(f"{topic} has {now} partitions; Kafka cannot shrink a topic to {partitions}")
    if partitions > now:
        admin = make_admin(settings)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=partitions)})
        except InvalidPartitionsError:
            pass  # grown to this count meanwhile; the wait below says if not
        finally:
            admin.close()
    _wait_for_partitions(settings, topic, partitions, timeout_s)
    return partitions


def order_event(order_id: str, event: str, customer_id: str | None = None) -> bytes:
    """One small JSON event about an order (``placed``, ``cancelled``...), the value of a record."""
    payload: dict[str, str] = {"order_id": order_id, "event": event}
    if customer_id is not None:
        payload["customer_id"] = customer_id
    return json.dumps(payload, separators=(",", ":")).encode()


def read_events(settings: Settings, topic: str, *, timeout_s: float = 30.0) -> pd.DataFrame:
    """Every record of ``topic`` up to its end now, with its partition and offset and the event it carries.

    Sorted by partition, then offset: the only order Kafka keeps.
    """
    rows = []
    for (partition, offset), record in read_to_end(settings, topic, timeout_s).items():
        try:
            payload = json.loads(record.value or b"")
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        rows.append({
            "partition": partition,
            "offset": offset,
            "key": record.key.decode(errors="replace") if record.key is not None else None,
            "order_id": payload.get("order_id"),
            "event": payload.get("event"),
            "customer_id": payload.get("customer_id"),
        })
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def events_by_key(events: pd.DataFrame, key: str = "order_id") -> pd.DataFrame:
    """Per order (or per ``key`` column): the partitions its events are on, and its events in offset order.

    ``in one partition`` is what keeps an order's events in order for a
    reader: across partitions, a consumer may see them in any interleaving.
    """
    rows = []
    for name, group in events.sort_values(["partition", "offset"]).groupby(key, sort=True):
        partitions = sorted(set(group["partition"]))
        rows.append({
            key: name,
            "partitions": ", ".join(str(p) for p in partitions),
            "events (per partition, in offset order)": " | ".join(
                " → ".join(group.loc[group["partition"] == p, "event"]) for p in partitions
            ),
            "in one partition": len(partitions) == 1,
        })
    columns = [key, "partitions", "events (per partition, in offset order)", "in one partition"]
    return pd.DataFrame(rows, columns=columns).set_index(key)


def customer_keys(count: int) -> list[str]:
    """``customer-01`` … : the customers of the skew demo, the keys of its records."""
    return [f"customer-{number:02d}" for number in range(1, count + 1)]


def customer_orders(*, orders: int, customers: int, hot: str, hot_share: float, seed: int = 1) -> list[tuple[str, str]]:
    """``(customer, order id)`` for ``orders`` orders: ``hot`` places ``hot_share`` of them, the others share the rest evenly.

    Seeded, so the same every run: which customer each order is for, and so
    (through the key) which partition it lands on.
    """
    if not 0 <= hot_share <= 1:
        raise ValueError(f"hot_share is a share of the orders, between 0 and 1; got {hot_share}")
    others = [key for key in customer_keys(customers) if key != hot]
    if not others:
        raise ValueError(f"{customers} customers leave no one besides {hot!r}")
    rng = random.Random(seed)
    picked = []
    for number in range(orders):
        customer = hot if rng.random() < hot_share else rng.choice(others)
        picked.append((customer, f"order-{seed}-{number:04d}"))
    return picked


def placement(events: pd.DataFrame) -> dict[str, int]:
    """``{key: partition}`` as read back from a topic (a key's records are all on one partition while the count is unchanged)."""
    keyed = events.dropna(subset=["key"])
    return {key: int(partition) for key, partition in zip(keyed["key"], keyed["partition"])}


def key_moves(keys: Iterable[str], before: int, after: int) -> pd.DataFrame:
    """Where each key goes with ``before`` and with ``after`` partitions, and whether it moves.

    Pure: what the default partitioner computes, no broker asked.
    """
    unique = list(dict.fromkeys(keys))
    frame = pd.DataFrame(
        {
            f"{before} partitions": [partition_for_key(key, before) for key in unique],
            f"{after} partitions": [partition_for_key(key, after) for key in unique],
        },
        index=pd.Index(unique, name="key"),
    )
    frame["moves"] = frame[f"{before} partitions"] != frame[f"{after} partitions"]
    return frame
