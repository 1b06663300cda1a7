"""Lesson 09 on a real three-node cluster: a leader killed while the lab places orders, the stall measured, the
node back in every ISR leading nothing, a preferred leader election, and one kill met by acks=1 and acks=all.

The cluster is the session's (conftest.py); every test leaves all three nodes running and removes its topics.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from orderlab.broker import LocalCluster
from orderlab.clients import make_admin
from orderlab.cleanup import remove_run
from orderlab.failover import (
    TIMED_ORDERS, elect_preferred_leaders, kill_leader, paired_kill, partitions_table, replication_of, restart_node,
)
from orderlab.lab import Lab
from orderlab.lessons import drain
from orderlab.settings import Settings

from waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(600)]


def test_a_killed_leader_stalls_its_partition_and_comes_back_leading_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=cluster.bootstrap_servers, topic_suffix=f"-lesson09-{uuid.uuid4().hex[:8]}",
                        db_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    topic = settings.order_details_topic
    lab = Lab(settings, rate=30, workers=2, topology=TIMED_ORDERS)
    table = None
    try:
        lab.start()
        assert replication_of(cluster, topic) == (3, 2)
        table = partitions_table(cluster, topic, interval_s=0.5).start()
        assert table.last is not None and len(table.last[0]) == 6 and table.last[1].startswith("nodes up: ")
        assert lab.wait_until(lambda snapshot: snapshot.confirmed >= 20, 60).confirmed >= 20

        kill = kill_leader(cluster, lab, partition=0)
        assert kill.new_leader not in (kill.killed, None) and not cluster.node(kill.killed).is_running()
        assert kill.stall_s >= 1.0 and kill.election_s >= 1.0 and kill.acked_during_kill > 0
        # the live table follows: the dead node leaves every ISR
        assert wait_for(lambda: all(kill.killed not in isr for isr in table.last[0]["isr"]), timeout=30)

        back = restart_node(cluster, kill.killed, topic)
        assert back.leads == () and back.rejoin_s >= back.restart_s > 0
        # restart_node saw it in every ISR; under load a follower can drop out again for replica.lag.time.max.ms
        assert wait_for(lambda: all(kill.killed in state.isr for state in cluster.describe(topic)), timeout=30)
        lab.set_rate(0)
        drain(lab, 60)
        lab.stop()
        result = lab.reconcile()
        assert result.orders_placed > 0 and result.lost == 0 and result.duplicate_emails == 0

        elected = elect_preferred_leaders(cluster, topic)
        assert all(row.leader == row.replicas[0] for row in elected.itertuples())
    finally:
        if table is not None:
            table.stop()
        lab.stop()
        remove_run(settings)


def test_one_kill_met_by_acks_1_and_acks_all_and_acks_all_loses_nothing(cluster: LocalCluster) -> None:
    results = paired_kill(cluster, leader=2, rate=300, warmup_s=1.0, after_s=1.0)
    assert [result.acks for result in results] == ["1", "all"]
    assert {result.killed for result in results} == {2} and {result.restart_s for result in results} == {results[0].restart_s}
    assert all(result.new_leader in (1, 3) and result.acknowledged > 0 for result in results)
    by_acks = {result.acks: result for result in results}
    assert by_acks["all"].missing == 0, f"acks=all lost {by_acks['all'].missing} acknowledged records"
    assert by_acks["1"].read_back is not None and by_acks["1"].read_back >= by_acks["1"].acknowledged - by_acks["1"].missing
    assert cluster.node(2).is_running()
    admin = make_admin(Settings(bootstrap_servers=cluster.bootstrap_servers))
    try:
        assert wait_for(lambda: not {result.topic for result in results} & set(admin.list_topics()), timeout=30)
    finally:
        admin.close()
