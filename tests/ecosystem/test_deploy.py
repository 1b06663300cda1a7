"""Static checks of the Kubernetes manifests in deploy/.

Every manifest is loaded with yaml.safe_load_all and checked in pure Python:
the fields Kubernetes requires, Deployments whose selectors match their pods,
and the references between files (ConfigMap, Services, Strimzi cluster and
topics, kustomization). No cluster, kubeconform or kubeval is needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from orderlab.seed import SEED

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATION = DEPLOY / "kustomization.yaml"

ROLES = SEED.role_names  # every role of the seed topology has a service here
DATA_TOPICS = ("order_details", "order_confirmed", "order_declined")
# metadata.name of most kinds: an RFC 1123 subdomain.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def manifest_files() -> list[Path]:
    files = [p for p in sorted(DEPLOY.rglob("*")) if p.suffix in (".yaml", ".yml") and p.is_file()]
    return [p for p in files if p.name not in ("kustomization.yaml", "kustomization.yml")]


def load_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((str(path.relative_to(DEPLOY)), document))
    return documents


DOCUMENTS = load_documents()


def of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in DOCUMENTS if isinstance(doc, dict) and doc.get("kind") == kind]


def one(kind: str, name: str | None = None) -> dict:
    found = [doc for doc in of_kind(kind) if name is None or doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}{' ' + name if name else ''}, found {len(found)}"
    return found[0]


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def cpu_millicores(quantity) -> float:
    text = str(quantity)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


MEMORY_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory_bytes(quantity) -> float:
    match = re.fullmatch(r"([0-9.]+)([kMGT]i?|Ki)?", str(quantity))
    assert match, f"not a memory quantity: {quantity!r}"
    return float(match.group(1)) * MEMORY_UNITS[match.group(2) or ""]


# -- every document ----------------------------------------------------------------
def test_deploy_holds_manifests():
    assert len(DOCUMENTS) >= 10
    kinds = {doc.get("kind") for _, doc in DOCUMENTS}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "Kafka", "KafkaNodePool", "KafkaTopic"} <= kinds


@pytest.mark.parametrize(
    "source,document",
    DOCUMENTS,
    ids=[f"{source}:{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}" for source, doc in DOCUMENTS],
)
def test_document_has_api_version_kind_and_name(source, document):
    assert isinstance(document, dict), f"{source}: a document is not a mapping"
    assert isinstance(document.get("apiVersion"), str) and re.fullmatch(r"([a-z0-9.-]+/)?v\d+\w*", document["apiVersion"])
    assert isinstance(document.get("kind"), str) and re.fullmatch(r"[A-Z][A-Za-z]+", document["kind"])
    metadata = document.get("metadata")
    assert isinstance(metadata, dict), f"{source}: no metadata"
    name = metadata.get("name")
    assert isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.match(name), f"{source}: bad name {name!r}"
    for key, value in (metadata.get("labels") or {}).items():
        assert isinstance(value, str), f"{source}: label {key} must be a string, got {value!r}"
    if "namespace" in metadata:
        assert metadata["namespace"] == one("Namespace")["metadata"]["name"]


def test_names_are_unique_per_kind():
    seen = set()
    for source, doc in DOCUMENTS:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{source}: {key[0]} {key[1]} is defined twice"
        seen.add(key)


# -- kustomization -----------------------------------------------------------------
@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))


def test_kustomization_lists_every_manifest_and_nothing_else(kustomization):
    listed = kustomization.get("resources") or []
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    on_disk = {str(p.relative_to(DEPLOY)) for p in manifest_files()}
    assert set(listed) == on_disk, (
        f"not listed: {sorted(on_disk - set(listed))}; listed but missing: {sorted(set(listed) - on_disk)}"
    )


def test_kustomization_targets_the_namespace(kustomization):
    assert kustomization.get("namespace") == one("Namespace")["metadata"]["name"]


def test_kustomization_image_override_matches_the_role_images(kustomization):
    overridden = {entry["name"] for entry in kustomization.get("images") or []}
    for role in ROLES:
        for container in containers(one("Deployment", role)):
            assert container["image"].split(":")[0] in overridden, f"{role}: image {container['image']} has no images: entry"


# -- Deployments -------------------------------------------------------------------
DEPLOYMENTS = of_kind("Deployment")


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["metadata"]["name"] for d in DEPLOYMENTS])
def test_deployment_selector_matches_its_pods(deployment):
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector, "empty selector"
    mismatched = {k: v for k, v in selector.items() if labels.get(k) != v}
    assert not mismatched, f"selector {mismatched} does not match pod labels {labels}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["metadata"]["name"] for d in DEPLOYMENTS])
def test_deployment_containers_have_image_and_bounded_resources(deployment):
    assert containers(deployment), "no containers"
    for container in containers(deployment):
        assert container.get("name")
        image = container.get("image")
        assert isinstance(image, str) and image and not re.search(r"\s", image)
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for key in ("cpu", "memory"):
            assert key in requests and key in limits, f"{container['name']}: {key} request and limit are both needed"
        assert cpu_millicores(requests["cpu"]) <= cpu_millicores(limits["cpu"])
        assert memory_bytes(requests["memory"]) <= memory_bytes(limits["memory"])


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["metadata"]["name"] for d in DEPLOYMENTS])
def test_deployment_pods_run_as_non_root(deployment):
    pod = deployment["spec"]["template"]["spec"]
    assert pod.get("securityContext", {}).get("runAsNonRoot") is True
    for container in containers(deployment):
        assert container.get("securityContext", {}).get("allowPrivilegeEscalation") is False


@pytest.mark.parametrize("role", ROLES)
def test_role_deployment_runs_its_role(role):
    deployment = one("Deployment", role)
    (container,) = containers(deployment)
    assert container["command"] == ["orderlab", "run", role]


def test_every_deployment_of_the_orderlab_image_reads_the_configmap():
    """The ConfigMap is orderlab's environment; Mailpit, a third-party image,
    is the one Deployment that does not run orderlab and has no use for it."""
    configmap = one("ConfigMap")["metadata"]["name"]
    orderlab_image = containers(one("Deployment", "orders"))[0]["image"]
    users = set()
    for deployment in DEPLOYMENTS:
        for container in containers(deployment):
            if container["image"] != orderlab_image:
                continue
            users.add(deployment["metadata"]["name"])
            refs = [e.get("configMapRef", {}).get("name") for e in container.get("envFrom") or []]
            assert configmap in refs, f"{deployment['metadata']['name']} does not take envFrom {configmap}"
    assert users == set(ROLES)


def test_transactions_scale_out_within_the_partition_count():
    replicas = one("Deployment", "transactions")["spec"]["replicas"]
    partitions = topic("order_details")["spec"]["partitions"]
    assert 2 <= replicas <= partitions, f"{replicas} transactions pods for {partitions} partitions"


# -- ConfigMap and the references it makes -----------------------------------------
def test_configmap_holds_the_orderlab_environment():
    data = one("ConfigMap")["data"]
    for key in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "ORDERLAB_SMTP_HOST",
        "ORDERLAB_SMTP_PORT",
        "ORDERLAB_DB_URL",
        "ORDERLAB_EXACTLY_ONCE",
        "ORDERLAB_RATE",
    ):
        assert key in data, f"{key} missing from the ConfigMap"
    # ConfigMap values must be strings, or the API server rejects the object.
    not_strings = {k: v for k, v in data.items() if not isinstance(v, str)}
    assert not not_strings, f"quote these values: {not_strings}"
    assert data["ORDERLAB_EXACTLY_ONCE"] in ("true", "false")
    assert float(data["ORDERLAB_RATE"]) > 0


def test_configmap_points_at_the_strimzi_bootstrap_service():
    kafka = one("Kafka")
    plain = [lst for lst in kafka["spec"]["kafka"]["listeners"] if lst.get("tls") is False]
    assert plain, "the roles speak PLAINTEXT, so the Kafka needs a listener without TLS"
    expected = {f"{kafka['metadata']['name']}-kafka-bootstrap:{lst['port']}" for lst in plain}
    assert one("ConfigMap")["data"]["KAFKA_BOOTSTRAP_SERVERS"] in expected


def test_configmap_points_at_the_mailpit_service():
    data = one("ConfigMap")["data"]
    service = one("Service", data["ORDERLAB_SMTP_HOST"])
    assert int(data["ORDERLAB_SMTP_PORT"]) in {p["port"] for p in service["spec"]["ports"]}
    # ...and that Service selects the Mailpit pods.
    mailpit = one("Deployment", "mailpit")
    labels = mailpit["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


@pytest.mark.parametrize("role", ROLES)
def test_ledger_directory_is_a_writable_volume(role):
    url = one("ConfigMap")["data"]["ORDERLAB_DB_URL"]
    assert url.startswith("sqlite:////"), "the ledger must be an absolute sqlite path"
    directory = url[len("sqlite:///"):].rsplit("/", 1)[0]
    (container,) = containers(one("Deployment", role))
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    assert directory in mounts, f"{role}: nothing mounted at {directory}"
    volumes = {v["name"] for v in one("Deployment", role)["spec"]["template"]["spec"].get("volumes") or []}
    assert mounts[directory] in volumes


# -- Strimzi -----------------------------------------------------------------------
def topic(name: str) -> dict:
    matches = [t for t in of_kind("KafkaTopic") if t["spec"].get("topicName", t["metadata"]["name"]) == name]
    assert len(matches) == 1, f"expected one KafkaTopic for {name}, found {len(matches)}"
    return matches[0]


def test_kafka_is_a_kraft_cluster_of_node_pools():
    kafka = one("Kafka")
    assert kafka["apiVersion"].startswith("kafka.strimzi.io/")
    assert "zookeeper" not in kafka["spec"]
    assert "topicOperator" in kafka["spec"].get("entityOperator", {}), "KafkaTopic resources need the Topic Operator"
    pools = of_kind("KafkaNodePool")
    assert pools
    roles = set()
    for pool in pools:
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert pool["spec"]["replicas"] >= 1
        roles |= set(pool["spec"]["roles"])
        assert pool["spec"].get("storage"), "a node pool needs storage"
    assert roles == {"controller", "broker"}


def test_topics_match_the_pipeline():
    """The same plan as orderlab/topics.py: three data topics with
    ORDERLAB_ORDER_DETAILS_PARTITIONS partitions and a one-partition .dlq each."""
    kafka_name = one("Kafka")["metadata"]["name"]
    partitions = int(one("ConfigMap")["data"]["ORDERLAB_ORDER_DETAILS_PARTITIONS"])
    assert partitions == 6
    expected = {name: partitions for name in DATA_TOPICS} | {name + ".dlq": 1 for name in DATA_TOPICS}
    actual = {}
    for resource in of_kind("KafkaTopic"):
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == kafka_name
        actual[resource["spec"].get("topicName", resource["metadata"]["name"])] = resource["spec"]["partitions"]
    assert actual == expected


def test_topic_replicas_fit_the_brokers():
    brokers = sum(p["spec"]["replicas"] for p in of_kind("KafkaNodePool") if "broker" in p["spec"]["roles"])
    for resource in of_kind("KafkaTopic"):
        assert 1 <= resource["spec"]["replicas"] <= brokers, resource["metadata"]["name"]


def test_readme_says_to_install_strimzi_first():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/" in readme
    before_apply = readme.split("## Apply")[0]
    assert "Strimzi" in before_apply and "operator" in before_apply
