"""A real Apache Kafka broker on 127.0.0.1, run from Maven Central jars.

One JVM per data dir, in KRaft combined mode (broker and controller), started
detached so it outlives the CLI or notebook that started it. Everything a
later process needs to find it again (pid, ports) is in the data dir's state
file, so ``LocalBroker.from_data_dir(d).stop()`` works from anywhere.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .config import (
    DEMO_SASL_PASSWORD,
    DEMO_SASL_USER,
    HOST,
    KAFKA_VERSION,
    SASL_MECHANISMS,
    BrokerConfig,
    BrokerState,
    new_cluster_id,
    scram_format_args,
)
from .errors import BrokerError
from .jars import default_cache_dir, ensure_jars, file_lock, find_java
from .jvm import KafkaJvm, format_storage
from .procs import free_port, port_is_free


def default_data_dir(port: int, cache_dir: Path | None = None) -> Path:
    """``<cache>/broker-<port>``: one broker's topics, config, logs and state."""
    return (cache_dir or default_cache_dir()) / f"broker-{port}"


class LocalBroker(KafkaJvm):
    """Start, stop, kill and probe one local broker.

    Restarting with the same data dir keeps its topics and offsets, and the
    ports it chose at first start (controller, SASL) are reused.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = 9092,
        *,
        cache_dir: Path | None = None,
        heap_mb: int = 512,
        sasl: bool = False,
    ) -> None:
        super().__init__(data_dir or default_data_dir(port, cache_dir), port, cache_dir=cache_dir, heap_mb=heap_mb)
        self.sasl = sasl

    def __repr__(self) -> str:
        return f"LocalBroker({str(self.data_dir)!r}, port={self.port}, sasl={self.sasl})"

    @classmethod
    def from_data_dir(cls, data_dir: Path, *, cache_dir: Path | None = None) -> "LocalBroker":
        """The broker last started in ``data_dir`` (same port and SASL setting)."""
        state = BrokerState.read(Path(data_dir).expanduser().resolve())
        if state is None:
            raise BrokerError(f"no broker was started in {data_dir} (no state file there)")
        return cls(data_dir, state.port, cache_dir=cache_dir, sasl=state.sasl)

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        """``127.0.0.1:<sasl port>`` once a SASL broker was started here, else None."""
        state = self.state
        return f"{HOST}:{state.sasl_port}" if state and state.sasl and state.sasl_port else None

    def sasl_client_config(self, mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
        """kafka-python settings to log in as the local demo user (broker started with sasl=True)."""
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"mechanism must be one of {', '.join(SASL_MECHANISMS)}")
        servers = self.sasl_bootstrap_servers
        if servers is None:
            raise BrokerError(f"the broker in {self.data_dir} was not started with SASL (sasl=True, --sasl)")
        return {
            "bootstrap_servers": servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": DEMO_SASL_USER,
            "sasl_plain_password": DEMO_SASL_PASSWORD,
        }

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker, or return at once if this data dir's broker already answers.

        Returns only when a client can fetch metadata; on failure the broker
        is killed and BrokerError carries the end of its log.
        """
        if os.name != "posix":
            raise BrokerError("the local broker runs on Linux and macOS; on Windows use `docker compose up -d kafka`")
        deadline = time.monotonic() + timeout
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / ".lock"):
            state = self.state
            if state and state.pid and self._is_ours(state.pid):
                self._check_matches_running(state)
                self._wait_ready(state.pid, deadline, timeout)
                return
            self._launch(state, deadline, timeout)

    def _check_matches_running(self, state: BrokerState) -> None:
        if state.port != self.port:
            raise BrokerError(
                f"the broker in {self.data_dir} already runs on port {state.port} (pid {state.pid}); "
                f"stop it first to move it to port {self.port}"
            )
        if self.sasl and not state.sasl:
            raise BrokerError(f"the broker in {self.data_dir} already runs without SASL (pid {state.pid}); stop it first")

    def _pick_ports(self, state: BrokerState | None) -> tuple[int, int | None, int | None]:
        """Controller port and SASL port (remembered, if still free) plus the remembered SASL port."""
        if not port_is_free(self.port):
            raise BrokerError(
                f"{HOST}:{self.port} is already in use by another process (not a broker from {self.data_dir}): "
                "stop that, or choose another port (--port)"
            )
        taken = {self.port}

        def keep_or_pick(remembered: int | None) -> int:
            port = remembered if remembered and remembered not in taken and port_is_free(remembered) else free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        controller_port = keep_or_pick(state.controller_port if state else None)
        remembered_sasl = state.sasl_port if state else None
        sasl_port = keep_or_pick(remembered_sasl) if self.sasl else None
        return controller_port, sasl_port, remembered_sasl

    def _launch(self, state: BrokerState | None, deadline: float, timeout: float) -> None:
        controller_port, sasl_port, remembered_sasl = self._pick_ports(state)
        libs = ensure_jars(self.cache_dir)
        java = find_java()
        config = BrokerConfig(self.data_dir, self.port, controller_port, sasl_port)
        jvm = self._write_files(config.render_server_properties(), config.render_log4j2(), java, libs)
        if not (config.log_dir / "meta.properties").exists():
            # First start only; with the demo SCRAM credentials (see scram_format_args).
            format_storage([(self, self._format_command(jvm, new_cluster_id(), scram_format_args()))])
        state = BrokerState(port=self.port, controller_port=controller_port, sasl_port=sasl_port or remembered_sasl, sasl=self.sasl)
        pid = self._spawn(jvm, state)
        self._wait_ready(pid, deadline, timeout)


__all__ = ["KAFKA_VERSION", "LocalBroker", "default_data_dir", "free_port"]
