"""A real three-node KRaft cluster: kill a partition's leader, see a new one, restart the node, see it rejoin the ISR.

One cluster for the session (``cluster`` in conftest.py, shared with the
lesson 09 tests), on free ports in a temporary folder; it is stopped
(SIGKILL after a bound) and its folder deleted at the end, also when a test
fails. Each test leaves every node running. Select these with
``pytest -m cluster``.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from orderlab.broker import BrokerError, LocalCluster
from orderlab.broker.cli import add_broker_parser
from orderlab.broker.procs import free_consecutive_ports
from orderlab.replication import create_replicated_topic, measure_failover, read_partition, topic_frame

from waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(600)]


def everyone_back(cluster: LocalCluster, topic: str) -> bool:
    try:
        return all(len(state.isr) == cluster.brokers for state in cluster.describe(topic))
    except BrokerError:
        return False


def cli(*argv: str) -> int:
    """``orderlab broker ARGV``'s exit code (what it prints goes to capsys)."""
    top = argparse.ArgumentParser(prog="orderlab")
    add_broker_parser(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["broker", *argv])
    return int(args.func(args))


def test_leader_kill_moves_leadership_and_the_node_rejoins(cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    topic = f"six-{uuid.uuid4().hex[:8]}"
    create_replicated_topic(cluster, topic, partitions=6)
    frame = topic_frame(cluster, topic)
    assert len(frame) == 6 and all(len(replicas) == 3 for replicas in frame["replicas"])
    assert not frame["under_replicated"].any()
    status = cluster.status()
    assert status.answering == (1, 2, 3) and status.controller in (1, 2, 3)
    assert sum(1 for node in status.nodes if node.controller) == 1

    leader = cluster.node_of_leader(topic, 0)
    assert leader in (1, 2, 3)
    data_dir = str(cluster.data_dir)
    code = cli("kill", str(leader), "--data-dir", data_dir)
    assert code == 0 and f"killed node {leader} (SIGKILL" in capsys.readouterr().out
    assert not cluster.node(leader).is_running()

    assert wait_for(lambda: cluster.node_of_leader(topic, 0) not in (None, leader), timeout=45), "no new leader"
    assert wait_for(lambda: all(s.leader not in (None, leader) for s in cluster.describe(topic)), timeout=45)
    status = cluster.status()
    down = status.nodes[leader - 1]
    assert not down.answers and down.pid is None and down.leads == ()
    led = sorted(state.partition for node in status.nodes for state in node.leads if state.topic == topic)
    assert led == [0, 1, 2, 3, 4, 5] and status.leaderless == ()

    code = cli("status", "--data-dir", data_dir)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # not every node answers
    assert lines[0].endswith("2 of 3 nodes up, active controller: node " + str(status.controller))
    assert lines[leader] == f"node {leader}  127.0.0.1:{cluster.node(leader).port}  down"

    # Two in-sync copies are enough for acks=all (min.insync.replicas=2).
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all")
    try:
        for number in range(20):
            producer.send(topic, f"run-{number}".encode(), partition=0).get(timeout=30)
    finally:
        producer.close()

    code = cli("restart", str(leader), "--data-dir", data_dir)
    assert code == 0 and f"node {leader} is up again" in capsys.readouterr().out
    assert wait_for(lambda: everyone_back(cluster, topic), timeout=90), f"node {leader} did not rejoin every ISR"
    assert cluster.status().answering == (1, 2, 3)
    assert read_partition(cluster.bootstrap_servers, topic, 0, "run") == set(range(20))

    code = cli("start", "--data-dir", data_dir)  # everything runs: nothing to start
    assert code == 0 and "cluster was already up" in capsys.readouterr().out


def test_failover_measurement_with_acks_all_loses_nothing(cluster: LocalCluster) -> None:
    topic = f"failover-{uuid.uuid4().hex[:8]}"
    create_replicated_topic(cluster, topic)
    result = measure_failover(cluster, topic, acks="all", rate=200, warmup_s=1.0, after_s=1.0)
    assert result.new_leader != result.killed and result.new_leader in (1, 2, 3)
    assert result.acknowledged > 0 and result.read_back is not None
    assert result.missing == 0, f"acks=all lost {result.missing} acknowledged records"
    # The producer waited at least until the dead leader's session ran out.
    assert result.stall_s > 1.0 and result.election_s > 1.0
    assert result.rejoin_s >= result.restart_s > 0
    assert cluster.node(result.killed).is_running()
    assert wait_for(lambda: everyone_back(cluster, topic), timeout=60)


def test_a_node_that_cannot_start_is_reported_and_nothing_is_left_running(tmp_path: Path) -> None:
    broken = LocalCluster(tmp_path / "broken", free_consecutive_ports(3), heap_mb=2)  # no JVM starts with 2 MB
    try:
        with pytest.raises(BrokerError) as caught:
            broken.start(timeout=60)
        message = str(caught.value)
        assert message.startswith("Kafka node ") and " exited while starting" in message
        assert "Error occurred during initialization of VM" in message
        assert broken.running_nodes() == []
    finally:
        broken.stop(timeout=5)
        shutil.rmtree(tmp_path / "broken", ignore_errors=True)
