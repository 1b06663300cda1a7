"""The partition table: for each partition of each consumer group, the worker
that holds it, the group's committed offset, the log's end offset and the lag.

It is redrawn with the charts every second, in the process that runs the
pipeline, so it is made only from what that process already knows:

- who holds what: each running consumer worker records the partitions it
  held after its last poll (``ConsumerService.held``; the consumer itself
  belongs to the worker's thread);
- the offsets: the lag meter's reading that the snapshot makes anyway (one
  OffsetFetch for every group and one end-offsets request, see
  :class:`orderlab.lag.LagMeter`), per partition.

No describe-group request is made: :func:`orderlab.peek.describe_group`
asks the broker the same question, and the integration tests check that
both agree.

A group that reads one topic gets a row per partition (transactions read
``order_details``, e-mail reads ``order_confirmed``). A group that reads
several topics gets one row per topic with its partitions added up: the
analytics role reads three topics of six partitions each with one worker,
and eighteen rows would tell no more than three.

:func:`partition_rows` is pure (it takes the offsets and the holders), so
tests feed it made-up figures; :func:`partition_html` draws the rows as the
panel's small HTML table and :func:`partition_frame` as a DataFrame for a
lesson cell.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .chartdata import short_group_name

NOBODY = "(none)"
COLUMNS = ["group", "topic", "partition", "owner", "committed", "end", "lag"]

# {group id: {(topic, partition): names of the running workers that hold it}}
Holders = Mapping[str, Mapping[Any, Sequence[str]]]


@dataclass(frozen=True)
class PartitionRow:
    """One row of the table: a partition (or, for a group that reads several topics, a whole topic).

    ``committed`` is the group's committed offset, the next record it will
    read (``None``: it has committed nothing there yet); ``end`` is the
    offset the next record written will get; ``lag`` = end - committed.
    For a topic row, ``partition`` is "all 6" and the figures are sums.
    """

    group: str
    topic: str
    partition: str
    owner: str
    committed: int | None
    end: int
    lag: int


def worker_holders(workers: Iterable[Any]) -> dict[str, dict[Any, list[str]]]:
    """``{group id: {partition: [worker names]}}`` from what each worker recorded after its last poll.

    A worker whose thread has ended (a crash) keeps its name with
    " (dead)": the group counts it as a member until its session times out.
    Two names on one partition mean a rebalance is handing it over (one
    worker has taken its new share, the other not polled since giving it back).
    """
    holders: dict[str, dict[Any, list[str]]] = {}
    for worker in workers:
        held = getattr(worker, "held", None)
        group = getattr(worker, "group_id", None) if held is not None else None
        if not group:
            continue
        name = worker.name if getattr(worker, "alive", True) else f"{worker.name} (dead)"
        by_partition = holders.setdefault(group, {})
        for tp in held:
            by_partition.setdefault(tp, []).append(name)
    return holders


def lab_holders(lab: Any) -> dict[str, dict[Any, list[str]]]:
    """:func:`worker_holders` over every running worker of every pool of ``lab`` (none for a lab without pools)."""
    pools = dict(getattr(lab, "pools", None) or {})
    return worker_holders(worker for pool in pools.values() for worker in list(pool.workers))


def _owner(names: Iterable[str]) -> str:
    unique = sorted(set(names), key=lambda name: (name == NOBODY, name))
    return ", ".join(unique) if unique else NOBODY


def partition_rows(offsets: Mapping[str, Mapping[Any, Any]], holders: Holders, *, topic_suffix: str = "") -> list[PartitionRow]:
    """The table's rows: group by group and topic by topic in the order of ``offsets``, then by partition.

    ``offsets`` is a lag meter reading (``{group id: {TopicPartition: offsets
    with .committed, .end, .lag}}``, as in ``LabSnapshot.offsets``);
    ``holders`` says who holds each partition (:func:`worker_holders`);
    ``topic_suffix`` (the run's) is cut from topic names.
    """
    rows: list[PartitionRow] = []
    for group, partitions in offsets.items():
        held = holders.get(group, {})
        topics: dict[str, list[Any]] = {}  # in the order the group reads them
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(tp)
        name = short_group_name(group)
        one_topic = len(topics) == 1
        for topic, unsorted in topics.items():
            tps = sorted(unsorted, key=lambda tp: tp.partition)
            shown = topic.removesuffix(topic_suffix) if topic_suffix else topic
            if one_topic:
                for tp in tps:
                    figures = partitions[tp]
                    rows.append(PartitionRow(
                        name, shown, str(tp.partition), _owner(held.get(tp, ())),
                        figures.committed if figures.committed >= 0 else None, figures.end, figures.lag,
                    ))
                continue
            owners = [owner for tp in tps for owner in held.get(tp, ())]
            if any(not held.get(tp) for tp in tps) and owners:
                owners.append(NOBODY)  # some of its partitions have no holder right now
            committed = [partitions[tp].committed for tp in tps if partitions[tp].committed >= 0]
            rows.append(PartitionRow(
                name, shown, f"all {len(tps)}", _owner(owners), sum(committed) if committed else None,
                sum(partitions[tp].end for tp in tps), sum(partitions[tp].lag for tp in tps),
            ))
    return rows


def partition_frame(rows: Sequence[PartitionRow]) -> pd.DataFrame:
    """The rows as a DataFrame (committed offsets not made yet as <NA>)."""
    frame = pd.DataFrame([[getattr(row, column) for column in COLUMNS] for row in rows], columns=COLUMNS)
    frame["committed"] = frame["committed"].astype("Int64")
    return frame


_STYLE = (
    "<style>"
    # the widget's own line height (28 px, for one-line labels) would make every row that tall
    ".orderlab-ptable{border-collapse:collapse;font-size:12px;line-height:1.35;"
    "font-family:var(--jp-ui-font-family,sans-serif)}"
    ".orderlab-ptable th,.orderlab-ptable td{padding:1px 6px;text-align:right;white-space:nowrap}"
    # two owners (a hand-over) wrap, rather than widening the table and pushing it under the chart
    ".orderlab-ptable td.o{white-space:normal;max-width:125px}"
    ".orderlab-ptable th{border-bottom:1px solid #999}"
    ".orderlab-ptable td.l,.orderlab-ptable th.l{text-align:left}"
    ".orderlab-ptable tr.g td{border-top:1px solid #ccc;padding-top:4px;font-weight:bold;text-align:left}"
    "</style>"
)


def partition_html(rows: Sequence[PartitionRow], *, caption: str = "partitions: who holds each, and its lag") -> str:
    """The rows as a compact HTML table: a heading row per group (its topic and total lag), then its rows.

    Hand-written rather than ``DataFrame.to_html``: it is drawn every second,
    and a few string joins cost a fraction of pandas' rendering.
    """
    parts = [_STYLE, f'<table class="orderlab-ptable"><caption style="text-align:left">{html.escape(caption)}</caption>',
             '<tr><th class="l">partition</th><th class="l">owner</th><th>committed</th><th>end</th><th>lag</th></tr>']
    if not rows:
        parts.append('<tr><td class="l" colspan="5" style="color:grey">no lag measured yet</td></tr>')
    group_rows: dict[str, list[PartitionRow]] = {}
    for row in rows:
        group_rows.setdefault(row.group, []).append(row)
    for group, members in group_rows.items():
        topics = list(dict.fromkeys(row.topic for row in members))
        total = sum(row.lag for row in members)
        read = topics[0] if len(topics) == 1 else f"{len(topics)} topics, partitions added up"
        heading = f"{group} · {read} · lag {total:,}"
        parts.append(f'<tr class="g"><td colspan="5">{html.escape(heading)}</td></tr>')
        for row in members:
            label = row.partition if len(topics) == 1 else row.topic
            committed = "–" if row.committed is None else f"{row.committed:,}"
            parts.append(
                f'<tr><td class="l">{html.escape(label)}</td><td class="l o">{html.escape(row.owner)}</td>'
                f"<td>{committed}</td><td>{row.end:,}</td><td>{row.lag:,}</td></tr>"
            )
    parts.append("</table>")
    return "".join(parts)
