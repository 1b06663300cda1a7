"""Settings: where Kafka is, what the topics and groups are called, how to
talk to SMTP and the ledger database.

Values come from keyword arguments first, then the environment
(``KAFKA_BOOTSTRAP_SERVERS`` and ``ORDERLAB_*``), then defaults. Every bad
value raises :class:`SettingsError` with one line naming the variable, the
value and what was expected, so a student never sees a traceback for a typo.

This is the one module that reads the environment: besides :class:`Settings`,
the readers below give the values that are not a client's settings (the
cache folder, the order rate of ``orderlab run orders``, test mode, the
Kafka address as set, for ``orderlab broker``, and the fault injection of
``orderlab chaos``). Each takes an optional mapping in place of
``os.environ``, for tests. :func:`child_environment` writes settings back
into an environment, for a process of our own to read them from.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_RATE = 10.0  # orders per second from `orderlab run orders` without --rate or ORDERLAB_RATE
TEST_MODE_VARIABLE = "ORDERLAB_TEST_MODE"
FAULT_HOLD_VARIABLE = "ORDERLAB_FAULT_HOLD_BEFORE_COMMIT"
BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting has a value orderlab cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, checked when made (:class:`SettingsError`, one line).

    Each field is also ``ORDERLAB_<FIELD>`` in the environment (the bootstrap
    servers are ``KAFKA_BOOTSTRAP_SERVERS``); :meth:`from_env` reads them.
    The comments below say what each field is for.
    """

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    # Appended to every topic and group name, so that a rerun (or a crashed
    # earlier run) of a notebook cannot leak records into this one.
    topic_suffix: str = ""
    order_details_partitions: int = 6
    client_id: str = "orderlab"
    # Delivery: at-least-once unless this is on (transactional producer in
    # the transactions role, read_committed consumers downstream).
    exactly_once: bool = False
    # Security, passed to every client.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # SMTP: empty host means "start an embedded catcher".
    smtp_host: str = ""
    smtp_port: int = 1025
    smtp_sender: str = "orders@shop.example.com"
    # Ledger of payments and e-mails: "sqlite:///path/ledger.db"; empty means
    # ledger.db in the orderlab cache folder (ORDERLAB_CACHE_DIR, ~/.cache/orderlab).
    db_url: str = ""
    # How long a role waits for the broker to answer before giving up.
    connect_timeout_s: float = 10.0
    # Which system's roles run: "seed" (orderlab.seed), or "package.module:ATTRIBUTE"
    # for a topology declared elsewhere (see orderlab.topology).
    topology: str = "seed"

    def __post_init__(self) -> None:
        _check_bootstrap(self.bootstrap_servers)
        if self.order_details_partitions < 1:
            raise SettingsError(f"order_details_partitions must be at least 1, got {self.order_details_partitions}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(
                f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, got {self.security_protocol!r}"
            )
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError(
                    f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)} with {self.security_protocol}, "
                    f"got {self.sasl_mechanism!r}"
                )
            if not self.sasl_username or self.sasl_password is None:
                raise SettingsError("sasl_username and sasl_password are needed with a SASL security_protocol")
        if not 0 < self.smtp_port < 65536:
            raise SettingsError(f"smtp_port must be a TCP port (1-65535), got {self.smtp_port}")
        if self.db_url and not self.db_url.startswith("sqlite:///") and self.db_url != "sqlite://":
            raise SettingsError(f"db_url must look like sqlite:///path/to/ledger.db, got {self.db_url!r}")
        if not self.topology.strip():
            raise SettingsError("topology is empty: set ORDERLAB_TOPOLOGY=seed or module:ATTRIBUTE")
        if self.connect_timeout_s <= 0:
            raise SettingsError(f"connect_timeout_s must be positive, got {self.connect_timeout_s}")

    # -- names -------------------------------------------------------------
    @property
    def order_details_topic(self) -> str:
        """This run's order_details topic (the suffix appended)."""
        return "order_details" + self.topic_suffix

    @property
    def order_confirmed_topic(self) -> str:
        """This run's order_confirmed topic."""
        return "order_confirmed" + self.topic_suffix

    @property
    def order_declined_topic(self) -> str:
        """This run's order_declined topic."""
        return "order_declined" + self.topic_suffix

    @property
    def data_topics(self) -> tuple[str, str, str]:
        """The three data topics of the seed, with this run's suffix."""
        return (self.order_details_topic, self.order_confirmed_topic, self.order_declined_topic)

    @staticmethod
    def dlq_topic(topic: str) -> str:
        """The dead-letter topic of ``topic``."""
        return topic + ".dlq"

    def group_id(self, role: str) -> str:
        """The consumer group of ``role`` in this run (``orderlab-<role><suffix>``)."""
        return f"orderlab-{role}{self.topic_suffix}"

    @property
    def db_path(self) -> str:
        """The sqlite file behind ``db_url`` (":memory:" for ``sqlite://``)."""
        if self.db_url == "sqlite://":
            return ":memory:"
        if self.db_url:
            return self.db_url[len("sqlite:///"):]
        return os.path.join(cache_dir(), "ledger.db")

    @property
    def db_setting(self) -> str:
        """The setting that chose ``db_path``, as a user would write it: for error messages."""
        if self.db_url:
            return f"ORDERLAB_DB_URL={self.db_url}"
        return f"ORDERLAB_CACHE_DIR={cache_dir()} (the ledger's folder while ORDERLAB_DB_URL is unset)"

    def with_(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` (settings are frozen)."""
        return replace(self, **changes)

    def as_environment(self) -> dict[str, str]:
        """These settings as the variables :meth:`from_env` reads (``KAFKA_BOOTSTRAP_SERVERS``, ``ORDERLAB_*``).

        A field that is None is left out (unset reads back as None);
        ``Settings.from_env(settings.as_environment()) == settings``.
        """
        env = {BOOTSTRAP_VARIABLE: self.bootstrap_servers}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "bootstrap_servers" or value is None:
                continue
            env["ORDERLAB_" + field.name.upper()] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return env

    # -- construction ------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Arguments win over the environment, which wins over defaults."""
        env = _environment(env)
        values: dict[str, Any] = {}
        if env.get(BOOTSTRAP_VARIABLE):
            values["bootstrap_servers"] = env[BOOTSTRAP_VARIABLE].strip()
        for field in fields(cls):
            name = "ORDERLAB_" + field.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(name, raw, field.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def new_run_suffix(prefix: str = "run") -> str:
    """A topic/group suffix unique to one run (``-run-1a2b3c4d``), so runs cannot see each other's records."""
    return f"-{prefix}-{uuid.uuid4().hex[:8]}"


def _environment(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def cache_dir(env: Mapping[str, str] | None = None) -> str:
    """Where orderlab keeps downloads and state outside the repository: the Kafka
    jars, the local brokers' data and the default ledger.

    ``ORDERLAB_CACHE_DIR`` (``~`` expanded), else ``~/.cache/orderlab``.
    """
    configured = _environment(env).get("ORDERLAB_CACHE_DIR", "").strip()
    return os.path.expanduser(configured) if configured else os.path.join(os.path.expanduser("~"), ".cache", "orderlab")


def order_rate(env: Mapping[str, str] | None = None) -> float:
    """Orders per second for ``orderlab run orders`` without ``--rate``: ``ORDERLAB_RATE``, else 10.

    Not a field of :class:`Settings`: only the orders role's process uses it
    (the Lab and the demo take their rate as an argument).
    """
    raw = _environment(env).get("ORDERLAB_RATE", "").strip()
    if not raw:
        return DEFAULT_RATE
    try:
        rate = float(raw)
    except ValueError:
        raise SettingsError(f"ORDERLAB_RATE={raw!r} is not a number of orders per second") from None
    if not math.isfinite(rate) or rate < 0:
        raise SettingsError(f"ORDERLAB_RATE must be a finite number of orders per second >= 0, got {raw!r}")
    return rate


def in_test_mode(env: Mapping[str, str] | None = None) -> bool:
    """``ORDERLAB_TEST_MODE``: the lessons' shorter runs (see :mod:`orderlab.ui.mode`). Unset or empty is off."""
    raw = _environment(env).get(TEST_MODE_VARIABLE, "").strip()
    if not raw:
        return False
    return bool(_parse(TEST_MODE_VARIABLE, raw, "bool"))


def fault_hold_before_commit(env: Mapping[str, str] | None = None) -> int | None:
    """``ORDERLAB_FAULT_HOLD_BEFORE_COMMIT=N``: fault injection for ``orderlab chaos`` (transactions_kill).

    Each consumer worker of ``orderlab run`` that has done the work of a
    batch of at least N records (for the transactions role: charged it in
    the ledger and had its outcomes acknowledged) holds there, before
    committing its offsets, until the process is killed: so a SIGKILL lands
    between charging and committing every time, not by luck. Unset or empty
    is off; never set it for a real deployment.
    """
    raw = _environment(env).get(FAULT_HOLD_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        records = int(raw)
    except ValueError:
        raise SettingsError(f"{FAULT_HOLD_VARIABLE}={raw!r} is not a whole number of records") from None
    if records < 1:
        raise SettingsError(f"{FAULT_HOLD_VARIABLE} must be at least 1 record, got {raw!r}")
    return records


def child_environment(settings: Settings, extra: Mapping[str, str] | None = None,
                      env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process (``orderlab run``, ``orderlab demo``) that is to use ``settings``.

    This process's environment (``PATH``, ``ORDERLAB_CACHE_DIR``...) without
    any variable of a setting or of the fault injection, which would
    otherwise leak into the child where ``settings`` leave a field unset;
    then ``settings`` (:meth:`Settings.as_environment`), then ``extra``.
    """
    own = {f"ORDERLAB_{field.name.upper()}" for field in fields(Settings)} | {BOOTSTRAP_VARIABLE, FAULT_HOLD_VARIABLE}
    child = {name: value for name, value in _environment(env).items() if name not in own}
    child.update(settings.as_environment())
    child.update(extra or {})
    return child


def configured_bootstrap(env: Mapping[str, str] | None = None) -> str | None:
    """``KAFKA_BOOTSTRAP_SERVERS`` as set (stripped), or None when unset or empty; not checked.

    For ``orderlab broker``, which only looks at the address to pick a local
    port and must work whatever else the environment says.
    """
    return _environment(env).get(BOOTSTRAP_VARIABLE, "").strip() or None


def _parse(name: str, raw: str, type_name: Any) -> Any:
    type_text = str(type_name)
    try:
        if type_text.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if type_text.startswith("int"):
            return int(raw)
        if type_text.startswith("float"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {type_text.split(' ')[0]}") from None
    return raw


def _check_bootstrap(servers: str) -> None:
    if not servers or not servers.strip():
        raise SettingsError("bootstrap_servers is empty: set KAFKA_BOOTSTRAP_SERVERS=host:port")
    for address in servers.split(","):
        host, sep, port = address.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS entry {address.strip()!r} is not host:port (for example localhost:9092)"
            )


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    """``"a:1,b:2"`` as ``[("a", 1), ("b", 2)]`` (validated)."""
    _check_bootstrap(servers)
    result = []
    for address in servers.split(","):
        host, _, port = address.strip().rpartition(":")
        result.append((host.strip("[]"), int(port)))
    return result
