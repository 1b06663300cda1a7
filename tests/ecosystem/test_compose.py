"""Static checks of docker-compose.yml.

No Docker engine is needed: the file is read with yaml.safe_load and the
checks are on the parsed services. Only the last test runs a tool
(`docker compose config` or Debian's `docker-compose`), and it is skipped
when neither is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orderlab.seed import SEED

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

CORE = ("kafka", "mailpit")
CLUSTER = ("kafka-1", "kafka-2", "kafka-3")
ROLES = SEED.role_names  # every role of the seed topology has a service here
HEALTHY_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict), "docker-compose.yml must be a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "docker-compose.yml has no services"
    return services


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a dict, whichever syntax the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return {key: (None if value is None else str(value)) for key, value in env.items()}


def published_ports(service: dict) -> list:
    return list(service.get("ports") or [])


def listener_addresses(value: str) -> dict[str, str]:
    """``"A://h:1,B://:2"`` as ``{"A": "h:1", "B": ":2"}``."""
    result = {}
    for entry in value.split(","):
        name, _, address = entry.strip().partition("://")
        result[name] = address
    return result


# -- the file as a whole ------------------------------------------------------
def test_uses_the_compose_spec_without_a_version_key(compose):
    assert "version" not in compose


def test_no_zookeeper_anywhere(compose):
    # Parsed content only: the comments may say "no ZooKeeper".
    assert "zookeeper" not in json.dumps(compose).lower()


def test_every_published_port_is_bound_to_loopback(services):
    offenders = []
    seen = 0
    for name, service in services.items():
        for port in published_ports(service):
            seen += 1
            if isinstance(port, dict):  # long syntax
                if port.get("published") is not None and port.get("host_ip") != "127.0.0.1":
                    offenders.append(f"{name}: {port}")
            elif not str(port).startswith("127.0.0.1:"):
                offenders.append(f"{name}: {port}")
    assert seen, "no service publishes a port at all"
    assert not offenders, "ports not bound to 127.0.0.1: " + "; ".join(offenders)


# -- which service is in which profile ----------------------------------------
@pytest.mark.parametrize("name", CORE)
def test_core_service_runs_without_a_profile(services, name):
    assert name in services, f"service {name!r} is missing"
    assert not services[name].get("profiles"), f"{name} must start with a plain `docker compose up`"


@pytest.mark.parametrize("role", ROLES)
def test_role_is_in_the_services_profile_and_runs_its_role(services, role):
    assert role in services, f"service {role!r} is missing"
    service = services[role]
    assert service.get("profiles") == ["services"]
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    assert command == ["orderlab", "run", role]


@pytest.mark.parametrize("name", ROLES + ("jupyter",))
def test_orderlab_containers_build_the_one_dockerfile(services, name):
    service = services[name]
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context is not None, f"{name} has no build context"
    assert (ROOT / context).resolve() == ROOT
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).is_file()
    assert service.get("image") == services["orders"].get("image"), f"{name} tags a different image than orders"


def test_jupyter_is_in_the_lab_profile(services):
    jupyter = services["jupyter"]
    assert jupyter.get("profiles") == ["lab"]
    command = " ".join(jupyter["command"]) if isinstance(jupyter["command"], list) else jupyter["command"]
    assert command.startswith("jupyter lab")
    assert "notebooks" in command
    assert "127.0.0.1:8888:8888" in published_ports(jupyter)


def test_kafka_ui_is_in_the_ui_profile(services):
    ui = services["kafka-ui"]
    assert ui.get("profiles") == ["ui"]
    assert ui["image"].startswith("ghcr.io/kafbat/kafka-ui")
    env = environment(ui)
    assert env.get("KAFKA_CLUSTERS_0_NAME")
    assert env.get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS") == "kafka:29092"
    assert "127.0.0.1:8080:8080" in published_ports(ui)


# -- Kafka ---------------------------------------------------------------------
def test_kafka_is_the_apache_image_in_kraft_combined_mode(services):
    kafka = services["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert tag.split(".")[0] == "4", f"expected a Kafka 4.x tag, got {tag!r}"
    env = environment(kafka)
    roles = {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert env.get("KAFKA_NODE_ID")
    assert env.get("KAFKA_CONTROLLER_LISTENER_NAMES") == "CONTROLLER"


def test_kafka_listeners_serve_the_host_and_the_compose_network(services):
    env = environment(services["kafka"])
    listeners = listener_addresses(env["KAFKA_LISTENERS"])
    advertised = listener_addresses(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(entry.strip().split(":", 1) for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert "localhost:9092" in advertised.values()
    assert "kafka:29092" in advertised.values()
    # Every listener has a protocol, and every advertised one is also bound.
    assert set(listeners) <= set(protocols)
    assert set(advertised) <= set(listeners)
    assert "CONTROLLER" in listeners and "CONTROLLER" not in advertised
    # The quorum voter points at the controller listener's port.
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    node_id, _, address = voter.partition("@")
    assert node_id == env["KAFKA_NODE_ID"]
    assert address.rsplit(":", 1)[1] == listeners["CONTROLLER"].rsplit(":", 1)[1]
    # The host listener is the only one published, on loopback.
    assert published_ports(services["kafka"]) == ["127.0.0.1:9092:9092"]


def test_kafka_internal_topics_fit_a_single_broker(services):
    env = environment(services["kafka"])
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        assert env.get(key) == "1", f"{key} must be 1 on a one-broker cluster, got {env.get(key)!r}"
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"
    assert int(env["KAFKA_NUM_PARTITIONS"]) > 1


def test_every_kafka_looks_for_expired_segments_within_seconds(services):
    # broker-wide only (no topic overrides it); lesson 10 watches a segment expire
    for name in ("kafka", *CLUSTER):
        assert int(environment(services[name])["KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS"]) <= 10_000, name


def test_kafka_keeps_its_data_on_a_named_volume(compose, services):
    kafka = services["kafka"]
    log_dir = environment(kafka)["KAFKA_LOG_DIRS"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in kafka.get("volumes", [])}
    assert log_dir in mounts, f"KAFKA_LOG_DIRS {log_dir} is not on a volume"
    assert mounts[log_dir] in (compose.get("volumes") or {}), "the Kafka data volume is not declared"


# -- the "cluster" profile: three Kafka nodes ---------------------------------------
def host_port(published: str) -> tuple[int, int]:
    """``"127.0.0.1:19092:9092"`` as (19092, 9092)."""
    _, host, container = published.rsplit(":", 2)
    return int(host), int(container.split("/")[0])


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_node_is_the_single_brokers_image_in_the_cluster_profile(services, name):
    assert name in services, f"service {name!r} is missing"
    node = services[name]
    assert node.get("profiles") == ["cluster"], f"{name} must start only with --profile cluster"
    assert node["image"] == services["kafka"]["image"]
    roles = {r.strip() for r in environment(node)["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}


def test_cluster_nodes_form_one_kraft_quorum(services):
    envs = {name: environment(services[name]) for name in CLUSTER}
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in envs.values()) == [1, 2, 3]
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1, "every node must be formatted with one cluster id"
    voter_lists = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert len(voter_lists) == 1, "every node must list the same voters"
    voters = dict(entry.split("@") for entry in voter_lists.pop().split(","))
    for name, env in envs.items():
        # Each voter is a node, at its hostname and its controller listener's port.
        controller_port = listener_addresses(env["KAFKA_LISTENERS"])["CONTROLLER"].rsplit(":", 1)[1]
        assert voters[env["KAFKA_NODE_ID"]] == f"{services[name]['hostname']}:{controller_port}"
    assert len(voters) == 3


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_node_advertises_its_own_published_port_and_replicates_in_the_network(services, name):
    node = services[name]
    env = environment(node)
    listeners = listener_addresses(env["KAFKA_LISTENERS"])
    advertised = listener_addresses(env["KAFKA_ADVERTISED_LISTENERS"])
    [published] = published_ports(node)
    outside, inside = host_port(published)
    assert listeners["HOST"].rsplit(":", 1)[1] == str(inside)
    assert advertised["HOST"] == f"localhost:{outside}", "a program on the host must be sent back to this node's own port"
    assert advertised["DOCKER"] == f"{node['hostname']}:{listeners['DOCKER'].rsplit(':', 1)[1]}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "DOCKER"
    assert "CONTROLLER" in listeners and "CONTROLLER" not in advertised


def test_cluster_ports_do_not_clash_with_each_other_or_the_single_broker(services):
    published = [host_port(port)[0] for name in ("kafka", *CLUSTER) for port in published_ports(services[name])]
    assert len(published) == len(set(published)) == 4
    assert sorted(host_port(published_ports(services[name])[0])[0] for name in CLUSTER) == [19092, 19093, 19094]


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_node_keeps_three_copies_of_everything(services, name):
    env = environment(services[name])
    expected = {
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "2",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    assert {key: env.get(key) for key in expected} == expected
    assert "-Xmx256m" in env["KAFKA_HEAP_OPTS"].split(), "each node's heap must be bounded"


def test_cluster_nodes_keep_data_on_volumes_of_their_own(compose, services):
    sources = set()
    for name in ("kafka", *CLUSTER):
        log_dir = environment(services[name])["KAFKA_LOG_DIRS"]
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services[name].get("volumes", [])}
        assert log_dir in mounts, f"{name}: KAFKA_LOG_DIRS {log_dir} is not on a volume"
        sources.add(mounts[log_dir])
    assert len(sources) == 4, "two nodes share a data volume"
    assert sources <= set(compose.get("volumes") or {})


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_node_healthcheck_asks_its_own_broker(services, name):
    test = " ".join(services[name]["healthcheck"]["test"])
    inside = host_port(published_ports(services[name])[0])[1]
    assert "kafka-broker-api-versions.sh" in test and f"--bootstrap-server localhost:{inside}" in test


# -- how the roles reach Kafka and Mailpit --------------------------------------
@pytest.mark.parametrize("name", ROLES + ("jupyter",))
def test_orderlab_containers_use_the_in_network_addresses(services, name):
    env = environment(services[name])
    advertised = listener_addresses(environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])
    assert env.get("KAFKA_BOOTSTRAP_SERVERS") == advertised["DOCKER"] == "kafka:29092"
    assert env.get("ORDERLAB_SMTP_HOST") == "mailpit"
    mailpit_ports = {str(p).rsplit(":", 1)[1] for p in published_ports(services["mailpit"])}
    assert env.get("ORDERLAB_SMTP_PORT") in mailpit_ports
    assert env.get("ORDERLAB_DB_URL", "").startswith("sqlite:////"), "the ledger must be an absolute sqlite path"


def test_ledger_is_shared_by_the_roles_that_need_it(compose, services):
    # Charging and e-mailing are idempotent through the ledger only if every
    # transactions and email container opens the same file.
    ledger_dir = environment(services["transactions"])["ORDERLAB_DB_URL"][len("sqlite:///"):].rsplit("/", 1)[0]
    sources = set()
    for name in ("transactions", "email"):
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services[name].get("volumes", [])}
        assert ledger_dir in mounts, f"{name} has no volume at {ledger_dir}"
        sources.add(mounts[ledger_dir])
    assert len(sources) == 1 and sources <= set(compose.get("volumes") or {})


def test_transactions_can_be_scaled(services):
    transactions = services["transactions"]
    assert "container_name" not in transactions
    assert not transactions.get("ports")


# -- start order and health ------------------------------------------------------
def test_every_depends_on_uses_conditions(services):
    checked = 0
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on must be the long syntax with conditions"
        for target, spec in depends_on.items():
            checked += 1
            assert target in services, f"{name} depends on unknown service {target}"
            assert isinstance(spec, dict) and spec.get("condition") in HEALTHY_CONDITIONS, (
                f"{name} -> {target}: no valid condition"
            )
            if spec["condition"] == "service_healthy":
                assert services[target].get("healthcheck"), f"{name} waits for {target} to be healthy, but it has no healthcheck"
    assert checked, "no service declares depends_on"


@pytest.mark.parametrize("name", ROLES + ("jupyter", "kafka-ui"))
def test_kafka_clients_wait_for_a_healthy_kafka(services, name):
    assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ("email", "jupyter"))
def test_smtp_senders_wait_for_a_healthy_mailpit(services, name):
    assert services[name]["depends_on"]["mailpit"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", CORE)
def test_core_services_have_healthchecks(services, name):
    healthcheck = services[name].get("healthcheck")
    assert healthcheck and not healthcheck.get("disable"), f"{name} has no healthcheck"
    test = healthcheck["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_kafka_healthcheck_asks_the_broker(services):
    test = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in test or "kafka-topics.sh" in test
    assert "--bootstrap-server localhost:9092" in test


# -- the real parser, where one is installed -------------------------------------
def compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed, so the file cannot be parsed by Compose itself")
    profiles = ["--profile", "services", "--profile", "lab", "--profile", "ui", "--profile", "cluster"]
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), *profiles, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{' '.join(command)} config failed:\n{result.stdout}\n{result.stderr}"
