"""A local Apache Kafka broker from Maven Central jars (needs Java 17+ and, once, Maven).

    from orderlab.broker import LocalBroker
    broker = LocalBroker(port=9092)
    broker.start()          # fetches the jars the first time
    ...
    broker.stop()

A cluster of three KRaft nodes for the replication lesson:

    from orderlab.broker import LocalCluster
    cluster = LocalCluster()          # ports 19092-19094
    cluster.start()
    cluster.kill(2); cluster.restart(2)
    cluster.stop()

``orderlab broker start|stop|status|fetch`` does the same from a shell
(``--brokers 3`` for the cluster, plus ``kill NODE`` and ``restart NODE``).
"""

from .config import DEMO_SASL_PASSWORD, DEMO_SASL_USER, KAFKA_VERSION, BrokerConfig, BrokerState
from .errors import BrokerError
from .jars import default_cache_dir, ensure_jars
from .cluster import LocalCluster, default_cluster_dir
from .local import LocalBroker, default_data_dir
from .metadata import PartitionState, describe_partitions
from .procs import free_port

__all__ = [
    "DEMO_SASL_PASSWORD",
    "DEMO_SASL_USER",
    "KAFKA_VERSION",
    "BrokerConfig",
    "BrokerError",
    "BrokerState",
    "LocalBroker",
    "LocalCluster",
    "PartitionState",
    "default_cache_dir",
    "default_cluster_dir",
    "default_data_dir",
    "describe_partitions",
    "ensure_jars",
    "free_port",
]
