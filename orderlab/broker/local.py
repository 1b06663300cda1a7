"""A real Apache Kafka broker on 127.0.0.1, run from Maven Central jars.

One JVM per data dir, in KRaft combined mode (broker and controller), started
detached so it outlives the CLI or notebook that started it. Everything a
later process needs to find it again (pid, ports) is in the data dir's state
file, so ``LocalBroker.from_data_dir(d).stop()`` works from anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from .config import (
    BROKER_LOG,
    CONSOLE_LOG,
    DEMO_SASL_PASSWORD,
    DEMO_SASL_USER,
    HOST,
    KAFKA_VERSION,
    LOG4J_PROPERTIES,
    SASL_MECHANISMS,
    SERVER_PROPERTIES,
    BrokerConfig,
    BrokerState,
    new_cluster_id,
    scram_format_args,
)
from .errors import BrokerError
from .jars import default_cache_dir, ensure_jars, file_lock, find_java
from .procs import command_line, file_size, free_port, launch_detached, port_accepts, port_is_free, tail, wait_exit

LOG_TAIL_LINES = 20


def default_data_dir(port: int, cache_dir: Path | None = None) -> Path:
    """``<cache>/broker-<port>``: one broker's topics, config, logs and state."""
    return (cache_dir or default_cache_dir()) / f"broker-{port}"


class LocalBroker:
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
        self.port = port
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        self.sasl = sasl
        # Absolute, so the path in java's command line identifies this broker.
        self.data_dir = Path(data_dir or default_data_dir(port, cache_dir)).expanduser().resolve()
        self.bootstrap_servers = f"{HOST}:{port}"
        self._log_offset = 0  # where this process's start of the broker began in broker.log

    def __repr__(self) -> str:
        return f"LocalBroker({str(self.data_dir)!r}, port={self.port}, sasl={self.sasl})"

    @classmethod
    def from_data_dir(cls, data_dir: Path, *, cache_dir: Path | None = None) -> "LocalBroker":
        """The broker last started in ``data_dir`` (same port and SASL setting)."""
        state = BrokerState.read(Path(data_dir).expanduser().resolve())
        if state is None:
            raise BrokerError(f"no broker was started in {data_dir} (no state file there)")
        return cls(data_dir, state.port, cache_dir=cache_dir, sasl=state.sasl)

    # -- where things are -------------------------------------------------

    @property
    def server_properties(self) -> Path:
        return self.data_dir / SERVER_PROPERTIES

    @property
    def log_path(self) -> Path:
        return self.data_dir / BROKER_LOG

    @property
    def state(self) -> BrokerState | None:
        return BrokerState.read(self.data_dir)

    @property
    def pid(self) -> int | None:
        """The pid of this data dir's running broker, if any."""
        state = self.state
        return state.pid if state and state.pid and self._is_ours(state.pid) else None

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

    # -- probing ------------------------------------------------------------

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is java running kafka.Kafka on this data dir's server.properties.

        Guards every signal we send: a pid in an old state file may since
        belong to anything.
        """
        argv = command_line(pid)
        if not argv:
            return False
        properties = str(self.server_properties)
        if "kafka.Kafka" in argv and properties in argv:
            return True
        joined = argv[0]  # ps output (no /proc): one string, the properties path last
        return len(argv) == 1 and " kafka.Kafka " in joined and joined.endswith(" " + properties)

    def is_running(self) -> bool:
        """Whether this data dir's broker process is alive (it may not answer yet)."""
        return self.pid is not None

    def answers(self, timeout: float = 5.0) -> bool:
        """Whether a Kafka client can fetch cluster metadata at ``bootstrap_servers``."""
        deadline = time.monotonic() + timeout
        if not port_accepts(self.port, min(timeout, 1.0)):
            return False  # no client, so no kafka-python connection-error logging
        from kafka import KafkaAdminClient  # imported late: it is slow to import

        remaining_ms = max(int((deadline - time.monotonic()) * 1000), 200)
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id="orderlab-broker-probe",
                bootstrap_timeout_ms=remaining_ms,
                request_timeout_ms=remaining_ms,
            )
        except Exception:  # any failure to bootstrap means "does not answer"
            return False
        try:
            admin.describe_cluster()
            return True
        except Exception:
            return False
        finally:
            admin.close()

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
        self.server_properties.write_text(config.render_server_properties(), encoding="utf-8")
        log4j = self.data_dir / LOG4J_PROPERTIES
        log4j.write_text(config.render_log4j2(), encoding="utf-8")
        jvm = [java, "-cp", str(libs / "*"), f"-Dlog4j2.configurationFile={log4j}", "-Djava.awt.headless=true"]
        if not (config.log_dir / "meta.properties").exists():
            self._format(jvm, config)
        heap = [f"-Xmx{self.heap_mb}m", f"-Xms{min(256, self.heap_mb)}m", "-XX:+ExitOnOutOfMemoryError"]
        command = [jvm[0], *heap, *jvm[1:], "kafka.Kafka", str(self.server_properties)]
        console = self.data_dir / CONSOLE_LOG
        console.write_text("", encoding="utf-8")  # this run's output only
        self._log_offset = file_size(self.log_path)  # errors quote this run's log only
        try:
            pid = launch_detached(command, console, self.data_dir)
        except (OSError, subprocess.SubprocessError, ValueError) as err:
            raise BrokerError(f"could not start java: {err}") from None
        BrokerState(
            port=self.port,
            controller_port=controller_port,
            sasl_port=sasl_port or remembered_sasl,
            sasl=self.sasl,
            pid=pid,
        ).write(self.data_dir)
        self._wait_ready(pid, deadline, timeout)

    def _format(self, jvm: list[str], config: BrokerConfig) -> None:
        """Format the KRaft storage (first start only), with the demo SCRAM credentials."""
        command = [
            jvm[0], "-Xmx256m", *jvm[1:], "kafka.tools.StorageTool", "format",
            "-t", new_cluster_id(), "-c", str(self.server_properties), *scram_format_args(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
            raise BrokerError(
                f"formatting Kafka storage in {config.log_dir} failed (exit {done.returncode}):\n" + "\n".join(output)
            )

    def _wait_ready(self, pid: int, deadline: float, timeout: float) -> None:
        while True:
            if not self._is_ours(pid):
                self._forget_pid()
                raise BrokerError(f"Kafka exited while starting (port {self.port}).{self._log_excerpt()}")
            if self.answers(timeout=max(0.5, min(5.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise BrokerError(f"Kafka did not answer at {self.bootstrap_servers} within {timeout:g} s.{self._log_excerpt()}")
            wait_exit(pid, min(0.25, max(0.0, deadline - time.monotonic())))  # a pause that ends early if java dies

    def _log_excerpt(self) -> str:
        parts = []
        offsets = {self.log_path: self._log_offset}
        for path in (self.data_dir / CONSOLE_LOG, self.log_path):
            lines = [line for line in tail(path, LOG_TAIL_LINES, offsets.get(path, 0)) if line.strip()]
            if lines:
                parts.append(f"\n--- last lines of {path} ---\n" + "\n".join(lines))
        return "".join(parts) or f" (nothing in {self.log_path})"

    def _forget_pid(self) -> None:
        state = self.state
        if state and state.pid is not None:
            replace(state, pid=None).write(self.data_dir)

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop this data dir's broker cleanly (SIGTERM, SIGKILL after ``timeout`` s).

        Returns whether a broker was running. Signals only a process that is
        java running kafka.Kafka with this data dir's server.properties.
        """
        pid = self.pid
        if pid is None:
            self._forget_pid()
            return False
        self._signal(pid, signal.SIGTERM)
        if not wait_exit(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            wait_exit(pid, 10.0)
        self._forget_pid()
        return True

    def kill(self) -> None:
        """SIGKILL the broker at once (a crash, for fault injection); no-op if not running."""
        pid = self.pid
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            wait_exit(pid, 10.0)
        self._forget_pid()

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as err:
            raise BrokerError(f"not allowed to signal the broker (pid {pid}): {err}") from None


__all__ = ["KAFKA_VERSION", "LocalBroker", "default_data_dir", "free_port"]
