"""A local Apache Kafka broker from Maven Central jars (needs Java 17+ and, once, Maven).

    from orderlab.broker import LocalBroker
    broker = LocalBroker(port=9092)
    broker.start()          # fetches the jars the first time
    ...
    broker.stop()

``orderlab broker start|stop|status|fetch`` does the same from a shell.
"""

from .config import DEMO_SASL_PASSWORD, DEMO_SASL_USER, KAFKA_VERSION, BrokerConfig, BrokerState
from .errors import BrokerError
from .jars import default_cache_dir, ensure_jars
from .local import LocalBroker, default_data_dir
from .procs import free_port

__all__ = [
    "DEMO_SASL_PASSWORD",
    "DEMO_SASL_USER",
    "KAFKA_VERSION",
    "BrokerConfig",
    "BrokerError",
    "BrokerState",
    "LocalBroker",
    "default_cache_dir",
    "default_data_dir",
    "ensure_jars",
    "free_port",
]
