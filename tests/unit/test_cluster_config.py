"""The local cluster's pure parts: node config, state file, metadata parsing, which cluster a CLI command
means and what it prints, the topics' replication factor. No Java is started here."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from orderlab.broker import BrokerError, BrokerState, LocalCluster
from orderlab.broker.cli import add_broker_parser
from orderlab.broker.cluster import DEFAULT_CLUSTER_PORT, ClusterStatus, NodeStatus, default_cluster_dir
from orderlab.broker.cluster_cli import cluster_for, cluster_for_node_action, cluster_to_start, format_leads, format_status
from orderlab.broker.config import ClusterNodeConfig, ClusterState, new_cluster_id
from orderlab.broker.metadata import ClusterView, PartitionState, partition_states
from orderlab.broker.procs import free_consecutive_ports, port_is_free
from orderlab.topics import replication_factor



def parse_properties(text: str) -> dict[str, str]:
    """Enough of java.util.Properties for what we render (no escapes, no continuation lines)."""
    pairs = (line.partition("=") for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


def node_config(tmp_path: Path, node_id: int, voters: int = 3) -> dict[str, str]:
    ports = tuple(40001 + n for n in range(voters))
    config = ClusterNodeConfig(tmp_path / f"node-{node_id}", node_id, 19091 + node_id, ports)
    return parse_properties(config.render_server_properties())


# -- node config ----------------------------------------------------------------


def test_every_node_is_a_broker_and_a_voter_of_one_static_quorum(tmp_path: Path) -> None:
    configs = [node_config(tmp_path, node_id) for node_id in (1, 2, 3)]
    for node_id, props in enumerate(configs, start=1):
        assert props["process.roles"] == "broker,controller"
        assert props["node.id"] == str(node_id)
        assert props["controller.quorum.voters"] == "1@127.0.0.1:40001,2@127.0.0.1:40002,3@127.0.0.1:40003"
        port = 19091 + node_id
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{40000 + node_id}"
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert props["log.dirs"] == str(tmp_path / f"node-{node_id}" / "kafka-data")
    assert len({props["log.dirs"] for props in configs}) == 3


def test_cluster_keeps_three_copies_and_accepts_writes_with_two(tmp_path: Path) -> None:
    props = node_config(tmp_path, 2)
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    for key in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert props[f"{key}.replication.factor"] == "3", key
        assert props[f"{key}.num.partitions"] == "3", key
    for key in ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "2", key
    # A dead node's partitions move after 3 s, not the default 9.
    assert props["broker.session.timeout.ms"] == "3000"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    # Expired segments go within seconds on every node too (lesson 10's retention, on a cluster).
    assert int(props["log.retention.check.interval.ms"]) <= 10_000
    # A node still waiting for the quorum after the default 60 s must not give up: starting is bounded by the caller.
    assert int(props["initial.broker.registration.timeout.ms"]) >= 180_000


def test_a_node_outside_the_voters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not one of the 3 voters"):
        ClusterNodeConfig(tmp_path, 4, 19095, (1, 2, 3))


def test_cluster_state_round_trips_and_bad_files_read_as_none(tmp_path: Path) -> None:
    state = ClusterState(first_port=19092, controller_ports=(40001, 40002, 40003), cluster_id=new_cluster_id(), heap_mb=256)
    state.write(tmp_path)
    assert ClusterState.read(tmp_path) == state and state.brokers == 3
    (tmp_path / "orderlab-cluster.json").write_text("{not json")
    assert ClusterState.read(tmp_path) is None
    assert ClusterState.read(tmp_path / "nowhere") is None


def test_nodes_have_consecutive_ports_and_folders_of_their_own(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, 29092)
    assert [node.port for node in cluster.nodes] == [29092, 29093, 29094]
    assert cluster.bootstrap_servers == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
    assert [node.data_dir for node in cluster.nodes] == [tmp_path.resolve() / f"node-{n}" for n in (1, 2, 3)]
    assert cluster.node(2).label == "Kafka node 2"
    assert "-Xmx256m" in cluster.node(1)._heap_args()
    with pytest.raises(BrokerError, match="there is no node 4"):
        cluster.node(4)


@pytest.mark.parametrize("brokers", [2, 6])
def test_cluster_sizes_without_a_fault_tolerant_quorum_are_refused(tmp_path: Path, brokers: int) -> None:
    with pytest.raises(BrokerError, match="3 to 5 nodes"):
        LocalCluster(tmp_path, 29092, brokers)


def test_default_cluster_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    assert default_cluster_dir(19092) == tmp_path / "cluster-19092"
    assert LocalCluster().data_dir == (tmp_path / "cluster-19092").resolve()
    assert LocalCluster().first_port == DEFAULT_CLUSTER_PORT == 19092


def test_free_consecutive_ports_are_free() -> None:
    first = free_consecutive_ports(3)
    assert all(port_is_free(first + offset) for offset in range(3))


def test_restart_without_a_quorum_is_refused_before_anything_starts(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, 29092)
    ClusterState(29092, (40001, 40002, 40003), new_cluster_id(), 256).write(cluster.data_dir)
    with pytest.raises(BrokerError, match="cannot start without a quorum: 2 of the 3 controllers"):
        cluster.restart(1)


def test_a_folder_made_for_another_size_is_refused(tmp_path: Path) -> None:
    ClusterState(29092, (40001, 40002, 40003), new_cluster_id(), 256).write(tmp_path.resolve())
    with pytest.raises(BrokerError, match="has 3 nodes from port 29092, not 5 from port 29092"):
        LocalCluster(tmp_path, 29092, 5).restart(1)


# -- metadata ------------------------------------------------------------------------


def test_partition_states_from_kafka_python_dicts() -> None:
    raw = [
        {"partition_index": 1, "leader_id": -1, "replica_nodes": [2, 3, 1], "isr_nodes": [], "offline_replicas": [2, 3, 1]},
        {"partition_index": 0, "leader_id": 3, "replica_nodes": [1, 3, 2], "isr_nodes": [3, 2], "offline_replicas": [1]},
    ]
    first, second = partition_states("orders", raw)
    assert first == PartitionState("orders", 0, 3, (1, 3, 2), (2, 3), (1,))
    assert first.under_replicated
    assert second.leader is None and second.partition == 1


@pytest.mark.parametrize(("brokers", "copies"), [(0, 1), (1, 1), (2, 2), (3, 3), (5, 3)])
def test_replication_factor_follows_the_live_brokers(brokers: int, copies: int) -> None:
    assert replication_factor(brokers) == copies


# -- CLI: which cluster a command means ---------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="orderlab")
    add_broker_parser(top.add_subparsers(dest="command", required=True))
    return top


@pytest.fixture()
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDERLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return tmp_path


def made_cluster(cache: Path, first_port: int) -> Path:
    folder = cache / f"cluster-{first_port}"
    folder.mkdir()
    ClusterState(first_port, (40001, 40002, 40003), new_cluster_id(), 256).write(folder)
    return folder


def test_cli_parses_brokers_kill_and_restart() -> None:
    args = parser().parse_args(["broker", "start", "--brokers", "3", "--port", "29092"])
    assert (args.brokers, args.port) == (3, 29092)
    args = parser().parse_args(["broker", "kill", "2"])
    assert args.node == 2 and callable(args.func)
    assert parser().parse_args(["broker", "restart", "3", "--brokers", "3"]).node == 3
    for bad in (["broker", "kill"], ["broker", "kill", "zero"], ["broker", "start", "--brokers", "0"]):
        with pytest.raises(SystemExit):
            parser().parse_args(bad)


def test_start_means_the_single_broker_unless_brokers_says_otherwise(cache: Path) -> None:
    assert cluster_to_start(parser().parse_args(["broker", "start"])) is None
    assert cluster_to_start(parser().parse_args(["broker", "start", "--brokers", "1"])) is None
    cluster = cluster_to_start(parser().parse_args(["broker", "start", "--brokers", "3"]))
    assert cluster is not None and (cluster.first_port, cluster.data_dir) == (19092, (cache / "cluster-19092").resolve())
    cluster = cluster_to_start(parser().parse_args(["broker", "start", "--brokers", "3", "--port", "29092"]))
    assert cluster is not None and cluster.data_dir == (cache / "cluster-29092").resolve()
    folder = made_cluster(cache, 39092)  # a --data-dir a cluster was started in starts that cluster
    cluster = cluster_to_start(parser().parse_args(["broker", "start", "--data-dir", str(folder)]))
    assert cluster is not None and cluster.first_port == 39092
    with pytest.raises(BrokerError, match="--sasl is for the single broker"):
        cluster_to_start(parser().parse_args(["broker", "start", "--brokers", "3", "--sasl"]))
    with pytest.raises(BrokerError, match="has 3 nodes, not 4"):
        cluster_to_start(parser().parse_args(["broker", "start", "--brokers", "4", "--data-dir", str(folder)]))


def test_stop_and_status_find_a_cluster_only_when_one_is_named_or_runs(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = ["broker", "status"]
    assert cluster_for(parser().parse_args(status), single_first=True) is None  # nothing anywhere: the single broker
    folder = made_cluster(cache, 29092)
    assert cluster_for(parser().parse_args(status), single_first=True) is None  # made, but no node runs
    named = cluster_for(parser().parse_args([*status, "--port", "29092"]), single_first=True)
    assert named is not None and named.data_dir == folder.resolve()
    assert cluster_for(parser().parse_args([*status, "--brokers", "1"]), single_first=True) is None

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094")
    exported = cluster_for(parser().parse_args(status), single_first=True)
    assert exported is not None and exported.first_port == 29092
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")

    monkeypatch.setattr(LocalCluster, "running", classmethod(lambda cls, cache_dir=None: [LocalCluster.from_data_dir(folder)]))
    running = cluster_for(parser().parse_args(status), single_first=True)
    assert running is not None and running.first_port == 29092
    two = [LocalCluster(cache / "a", 29092), LocalCluster(cache / "b", 39092)]
    monkeypatch.setattr(LocalCluster, "running", classmethod(lambda cls, cache_dir=None: two))
    with pytest.raises(BrokerError, match=r"several local clusters run \(first ports 29092, 39092\)"):
        cluster_for(parser().parse_args(status), single_first=True)


def test_a_running_single_broker_wins_over_a_running_cluster(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = made_cluster(cache, 29092)
    monkeypatch.setattr(LocalCluster, "running", classmethod(lambda cls, cache_dir=None: [LocalCluster.from_data_dir(folder)]))
    monkeypatch.setattr("orderlab.broker.local.LocalBroker.is_running", lambda self: self.port == 9092)
    assert cluster_for(parser().parse_args(["broker", "stop"]), single_first=True) is None
    cluster = cluster_for(parser().parse_args(["broker", "stop", "--brokers", "3"]), single_first=True)
    assert cluster is not None and cluster.first_port == 29092


def test_kill_and_restart_never_mean_the_single_broker(cache: Path) -> None:
    with pytest.raises(BrokerError, match="no local cluster runs here: start one with `orderlab broker start --brokers 3`"):
        cluster_for_node_action(parser().parse_args(["broker", "kill", "1"]))
    with pytest.raises(BrokerError, match="not of the single broker"):
        cluster_for_node_action(parser().parse_args(["broker", "kill", "1", "--brokers", "1"]))
    made_cluster(cache, 19092)  # a stopped cluster at the default port is still the one meant
    assert cluster_for_node_action(parser().parse_args(["broker", "restart", "1"])).first_port == 19092
    with pytest.raises(BrokerError, match=f"no cluster was started in {cache / 'cluster-29092'}"):
        cluster_for_node_action(parser().parse_args(["broker", "kill", "1", "--port", "29092"]))


def test_cli_kill_of_a_stopped_node_says_so(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = made_cluster(cache, 19092)
    BrokerState(port=19092, controller_port=40001, pid=None).write(folder)
    args = parser().parse_args(["broker", "kill", "1"])
    assert args.func(args) == 0
    assert capsys.readouterr().out == f"node 1 of the cluster in {folder.resolve()} was not running\n"
    args = parser().parse_args(["broker", "kill", "7"])
    assert args.func(args) == 1
    assert capsys.readouterr().err == f"orderlab broker: there is no node 7: the cluster in {folder.resolve()} has nodes 1 to 3\n"


# -- CLI: what status prints ------------------------------------------------------------


def test_format_leads_groups_partitions_by_topic() -> None:
    leads = (PartitionState("orders", 3, 1, (), ()), PartitionState("mail", 0, 1, (), ()), PartitionState("orders", 0, 1, (), ()))
    assert format_leads(leads) == "mail[0] orders[0,3]"


def test_status_shows_a_dead_node_and_who_leads_its_partitions(tmp_path: Path) -> None:
    six = [PartitionState("six", p, 2 if p % 2 else 3, (1, 2, 3), (2, 3), (1,)) for p in range(6)]
    view = ClusterView(brokers=(2, 3), controller=2, partitions=tuple(six))
    status = ClusterStatus(
        data_dir=tmp_path,
        nodes=(
            NodeStatus(1, 19092, None, False, False, view.led_by(1)),
            NodeStatus(2, 19093, 222, True, True, view.led_by(2)),
            NodeStatus(3, 19094, 333, True, False, view.led_by(3)),
        ),
        controller=2,
        leaderless=view.leaderless(),
    )
    assert format_status(status) == [
        f"Kafka cluster in {tmp_path}: 2 of 3 nodes up, active controller: node 2",
        "node 1  127.0.0.1:19092  down",
        "node 2  127.0.0.1:19093  up (pid 222)  controller  leads 3: six[1,3,5]",
        "node 3  127.0.0.1:19094  up (pid 333)  leads 3: six[0,2,4]",
    ]


def test_status_names_partitions_without_a_leader(tmp_path: Path) -> None:
    lost = PartitionState("solo", 0, None, (1,), ())
    status = ClusterStatus(tmp_path, (NodeStatus(1, 19092, 111, False, False, ()),), None, (lost,), "no node answers")
    lines = format_status(status)
    assert lines[0].endswith("0 of 1 nodes up, active controller: none answers")
    assert lines[1] == "node 1  127.0.0.1:19092  running (pid 111), not answering"
    assert lines[2:] == ["no leader (every in-sync replica down): solo[0]", "could not read the cluster's metadata: no node answers"]
