"""Looking inside Kafka for the lessons: records partition by partition,
committed offsets, and which consumer of a group owns which partition.

Every function opens its own short-lived client and closes it; none joins
a consumer group, so looking never disturbs the roles being looked at.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from .clients import make_admin, make_consumer
from .settings import Settings


def partition_for_key(key: str | bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, as the Java client)."""
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions


def _summary(value: bytes | None) -> dict[str, Any]:
    """A few readable fields of an order-like record (the order may be nested)."""
    try:
        payload = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return {"customer": "", "items": None, "total": None}
    if not isinstance(payload, dict):
        return {"customer": "", "items": None, "total": None}
    order = payload.get("order", payload)
    if not isinstance(order, dict):
        return {"customer": "", "items": None, "total": None}
    items = order.get("items") if isinstance(order.get("items"), list) else []
    total = order.get("total_cents")
    return {
        "customer": str(order.get("customer_email", "")),
        "items": sum(int(i.get("quantity", 0)) for i in items if isinstance(i, dict)),
        "total": total / 100.0 if isinstance(total, (int, float)) else None,
    }


def read_records(settings: Settings, topic: str, *, timeout_s: float = 30.0) -> pd.DataFrame:
    """Every record of ``topic`` up to its current end: partition, offset, key and a summary of the value.

    Sorted by partition then offset: the order Kafka keeps (within a partition only).
    """
    columns = ["partition", "offset", "key", "customer", "items", "total"]
    consumer = make_consumer(settings, None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return pd.DataFrame(columns=columns)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        rows = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    if record.offset < end[TopicPartition(record.topic, record.partition)]:
                        rows.append({
                            "partition": record.partition,
                            "offset": record.offset,
                            "key": record.key.decode(errors="replace") if record.key is not None else None,
                            **_summary(record.value),
                        })
    finally:
        consumer.close(autocommit=False)
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["partition", "offset"]).reset_index(drop=True)


def partition_sizes(settings: Settings, topic: str) -> pd.DataFrame:
    """Records per partition (end offset minus beginning offset)."""
    consumer = make_consumer(settings, None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        begin = consumer.beginning_offsets(tps) if tps else {}
        end = consumer.end_offsets(tps) if tps else {}
    finally:
        consumer.close(autocommit=False)
    return pd.DataFrame(
        {"records": [end[tp] - begin[tp] for tp in tps]},
        index=pd.Index([tp.partition for tp in tps], name="partition"),
    )


def committed_offsets(settings: Settings, group: str, topic: str) -> pd.DataFrame:
    """Per partition: the group's committed offset (the next record it will read), the end, and the lag."""
    consumer = make_consumer(settings, None)
    admin = make_admin(settings)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        end = consumer.end_offsets(tps) if tps else {}
        committed = admin.list_group_offsets({group: tps}).get(group, {}) if tps else {}
    finally:
        admin.close()
        consumer.close(autocommit=False)
    rows = []
    for tp in tps:
        offset = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
        rows.append({"partition": tp.partition, "committed": offset, "end": end[tp], "lag": max(0, end[tp] - offset)})
    return pd.DataFrame(rows, columns=["partition", "committed", "end", "lag"]).set_index("partition")


def describe_group(settings: Settings, group: str) -> dict[str, Any]:
    """``{"state": ..., "assignment": {member: [partitions]}}`` for a consumer group."""
    admin = make_admin(settings)
    try:
        info = admin.describe_groups([group]).get(group, {})
    finally:
        admin.close()
    assignment: dict[str, list[int]] = {}
    for member in info.get("members", []):
        partitions: list[int] = []
        granted = member.get("member_assignment")
        if isinstance(granted, dict):
            for entry in granted.get("assigned_partitions", []):
                partitions.extend(entry.get("partitions", []))
        # member ids are "<client id>-<uuid>": the uuid's first block tells members apart
        blocks = str(member.get("member_id", "")).rsplit("-", 5)
        assignment["member-" + blocks[1] if len(blocks) == 6 else blocks[0]] = sorted(partitions)
    return {"state": info.get("group_state", "Dead"), "assignment": assignment}


def assignment_table(description: dict[str, Any]) -> pd.DataFrame:
    """A group's members, sorted by their first partition, with their partitions."""
    rows = sorted(description["assignment"].items(), key=lambda item: (item[1][:1] or [10**9], item[0]))
    return pd.DataFrame(
        [{"member": member, "partitions": ", ".join(map(str, parts)) or "(none)", "count": len(parts)} for member, parts in rows],
        columns=["member", "partitions", "count"],
    )


def wait_for_assignment(
    settings: Settings, group: str, members: int, *, partitions: int | None = None, timeout_s: float = 30.0
) -> tuple[dict[str, Any], list[str]]:
    """Poll the group until it is Stable with ``members`` members holding all ``partitions``.

    ``partitions`` defaults to the order_details partition count. Returns the
    last description and the states seen on the way (a rebalance shows as
    PreparingRebalance → CompletingRebalance → Stable); bounded by ``timeout_s``.
    A retriable error (on a fresh broker the group coordinator may not be
    there yet) is looked past until the bound, then raised.
    """
    partitions = settings.order_details_partitions if partitions is None else partitions
    states: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            description = describe_group(settings, group)
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
            continue
        if not states or states[-1] != description["state"]:
            states.append(description["state"])
        assignment = description["assignment"]
        settled = (
            description["state"] == "Stable"
            and len(assignment) == members
            and sum(len(parts) for parts in assignment.values()) == partitions
        )
        if settled or time.monotonic() >= deadline:
            return description, states
        time.sleep(0.1)
