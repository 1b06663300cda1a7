"""Making Kafka clients from :class:`~orderlab.settings.Settings`.

Every producer, consumer and admin client in orderlab is made here, so the
security options, client ids and the delivery settings (acks, idempotence,
isolation level, manual commits) are decided in one place.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from . import kafka_compat  # noqa: F401 - fixes a kafka-python 3.0.12 group-join bug on import

from .settings import Settings, parse_bootstrap

HOW_TO_START = "start one with `orderlab broker start` (or `docker compose up -d kafka`), or set KAFKA_BOOTSTRAP_SERVERS"


class BrokerUnavailable(ConnectionError):
    """No Kafka broker answers at the configured address."""

    def __init__(self, bootstrap_servers: str, detail: str = "") -> None:
        self.bootstrap_servers = bootstrap_servers
        message = f"no Kafka broker answers at {bootstrap_servers}"
        if detail:
            message += f" ({detail})"
        super().__init__(f"{message}: {HOW_TO_START}")


class AuthenticationFailed(BrokerUnavailable):
    """The broker answers, but the SASL login or TLS handshake failed (wrong credentials, mechanism or listener).

    kafka-python 3 retries a refused login until its bootstrap timeout and
    then reports only "Unable to bootstrap"; a secured connection whose
    address accepts TCP is therefore reported as a login problem.
    """

    def __init__(self, settings: Settings) -> None:
        self.bootstrap_servers = settings.bootstrap_servers
        if settings.security_protocol.startswith("SASL"):
            problem = (
                f"Kafka at {settings.bootstrap_servers} answers, but the {settings.security_protocol} login as "
                f"{settings.sasl_username!r} with {settings.sasl_mechanism} failed: check ORDERLAB_SASL_USERNAME, "
                "ORDERLAB_SASL_PASSWORD and ORDERLAB_SASL_MECHANISM, and that this address is the broker's SASL listener"
            )
        else:
            problem = (
                f"Kafka at {settings.bootstrap_servers} answers, but the {settings.security_protocol} handshake failed: "
                "check ORDERLAB_SSL_CAFILE, ORDERLAB_SSL_CERTFILE and ORDERLAB_SSL_KEYFILE, and that this address is "
                "the broker's SSL listener"
            )
        ConnectionError.__init__(self, problem)


def security_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol.startswith("SASL"):
        config.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    if settings.security_protocol.endswith("SSL"):
        config.update(
            ssl_cafile=settings.ssl_cafile,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
        )
    return config


RECONNECT_BACKOFF_MAX_MS = 1000

# kafka-python keeps its own metrics (sensors updated on every request and
# record) in producers and consumers; orderlab never reads them, and they
# cost CPU in the busiest threads of the one process the Lab runs in.
NO_CLIENT_METRICS = {"metrics_enabled": False}


def _base_config(settings: Settings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        # give up (BrokerUnavailable) after the configured wait, not kafka-python's 30 s
        "bootstrap_timeout_ms": int(settings.connect_timeout_s * 1000),
        # Reconnect to a broker that was away within a second of it answering
        # again. kafka-python backs off up to 30 s: after a broker restart its
        # consumers came back 48 s and its producers 25 s late (1 s: 5.5 and 1.1 s).
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        **security_config(settings),
    }


PRODUCER_ACKS = "all"  # every producer here: a write counts once every in-sync replica has it


def make_producer(settings: Settings, *, transactional_id: str | None = None, **overrides: Any) -> KafkaProducer:
    """A producer that waits for all in-sync replicas and never duplicates on retry.

    ``linger_ms`` lets one batch carry many orders at high rates while adding
    at most a few milliseconds at low rates.
    """
    config: dict[str, Any] = {
        **_base_config(settings, f"{settings.client_id}-producer"),
        "acks": PRODUCER_ACKS,
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 128 * 1024,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 15_000,
        "max_block_ms": int(settings.connect_timeout_s * 1000),
        **NO_CLIENT_METRICS,
    }
    if transactional_id is not None:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    return _connect(settings, KafkaProducer, config)


# A consumer role sends a batch's output and at once waits for the acks
# before it commits: records lingering in the producer then only hold that
# wait up (twice per order, at the transactions and the e-mail hop). The
# records are batched anyway: while the role appends them the sender thread
# waits for the GIL, so a role's batch goes out in one request or a few.
REPLY_LINGER_MS = 0


def make_reply_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A producer for roles that wait for the acks of what they send right away (see ``REPLY_LINGER_MS``)."""
    return make_producer(settings, **{"linger_ms": REPLY_LINGER_MS, **overrides})


# What a consumer role fetches with (ConsumerService.consumer_overrides; the
# bench's ceiling too). With kafka-python's default of one byte the broker
# answers a fetch as soon as any record is there, so a role sent a fetch, a
# produce and an offset commit request for every few records: at 2000 orders/s
# the plain Kafka work of the pipeline (the bench's ceiling, paced) cost 486 µs
# of CPU an order, about one core; with 64 kB or 50 ms, 206 µs, and the Lab at
# that rate went from 0.95 to 0.78 cores. The price: at a low rate each hop
# waits up to the 50 ms (order to e-mail p50 at 100 orders/s: 5 ms before, 62
# ms after). Readers that read a topic to its end keep the default: they would
# wait out the 50 ms at the end of every partition.
ROLE_FETCH: dict[str, Any] = {"fetch_min_bytes": 64 * 1024, "fetch_max_wait_ms": 50}


def make_consumer(settings: Settings, group_id: str | None, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A consumer that commits only when told to (after the work is done).

    With ``exactly_once`` on, consumers read committed records only, so the
    records of an aborted transaction are never seen downstream.
    """
    config: dict[str, Any] = {
        **_base_config(settings, f"{settings.client_id}-{group_id or 'reader'}"),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed" if settings.exactly_once else "read_uncommitted",
        "max_poll_records": 500,
        "fetch_max_wait_ms": 100,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "request_timeout_ms": 30_000,
        **NO_CLIENT_METRICS,
    }
    config.update(overrides)
    consumer = _connect(settings, KafkaConsumer, config)
    if topics:
        consumer.subscribe(list(topics))
        if group_id is not None:
            await_topic_metadata(consumer, topics, settings.connect_timeout_s)
    return consumer


def await_topic_metadata(consumer: KafkaConsumer, topics: tuple[str, ...] | list[str], timeout_s: float) -> bool:
    """After ``subscribe``, before the first poll: wait (bounded) until the consumer knows every topic's partitions.

    A topic created a moment ago may not be in the metadata yet. A group
    whose leader assigns partitions in that moment gets nothing for it ("No
    partition metadata for topic"), and kafka-python 3.0 can then stay in
    that rebalance for the session timeout or longer, a consumer thread
    spinning meanwhile. The subscription's own metadata request (made in the
    background) answers within a fraction of a second; the group is joined
    only at the first poll, so it joins knowing every partition.
    """
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)  # kafka-python 3.0's metadata cache

    def known(topic: str) -> bool:
        if cluster is not None:
            return bool(cluster.partitions_for_topic(topic))
        return bool(consumer.partitions_for_topic(topic))  # asks for every topic's metadata: slower, same answer

    deadline = time.monotonic() + timeout_s
    while True:
        if all(known(topic) for topic in topics):
            return True
        if time.monotonic() >= deadline:
            return False  # let the group join anyway; kafka-python retries
        time.sleep(0.02)


def make_admin(settings: Settings, **overrides: Any) -> KafkaAdminClient:
    config = {**_base_config(settings, f"{settings.client_id}-admin"), "request_timeout_ms": 15_000, **overrides}
    return _connect(settings, KafkaAdminClient, config)


def _connect(settings: Settings, factory: Any, config: dict[str, Any]) -> Any:
    try:
        return factory(**config)
    except KafkaTimeoutError as exc:
        # kafka-python 3 says "Unable to bootstrap from ..." when no broker answers,
        # and also when one answers but refuses the login
        if settings.security_protocol != "PLAINTEXT" and _accepts_tcp(settings):
            raise AuthenticationFailed(settings) from None
        raise BrokerUnavailable(settings.bootstrap_servers, str(exc)) from None


def _accepts_tcp(settings: Settings) -> bool:
    for host, port in parse_bootstrap(settings.bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            continue
    return False


def check_broker(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise :class:`BrokerUnavailable` unless some bootstrap address accepts a TCP connection.

    This is a quick check before any client is made: kafka-python would
    otherwise retry for its whole timeout and end in a traceback.
    """
    deadline = time.monotonic() + (settings.connect_timeout_s if timeout_s is None else timeout_s)
    last_error = ""
    while True:
        for host, port in parse_bootstrap(settings.bootstrap_servers):
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return
            except OSError as exc:
                last_error = exc.strerror or str(exc)
        if time.monotonic() >= deadline:
            raise BrokerUnavailable(settings.bootstrap_servers, last_error)
        time.sleep(0.2)  # a fresh broker may be seconds from opening its port


def describe_kafka_error(exc: BaseException) -> str:
    """One line for a user, from a kafka-python error."""
    if isinstance(exc, KafkaError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)
