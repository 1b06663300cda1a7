"""One Kafka JVM on one data dir: its files, its storage, its detached launch, stop and kill.

The single broker (:class:`~orderlab.broker.local.LocalBroker`) and every node
of a :class:`~orderlab.broker.cluster.LocalCluster` are one of these. The data
dir's state file holds the pid and ports, so a later process finds the JVM
again; and every signal goes only to a process that is java running
``kafka.Kafka`` on this data dir's server.properties (a pid in an old state
file may since belong to anything).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .config import BROKER_LOG, CONSOLE_LOG, HOST, KAFKA_DATA, LOG4J_PROPERTIES, SERVER_PROPERTIES, BrokerState
from .errors import BrokerError
from .procs import command_line, file_size, launch_detached, port_accepts, tail, wait_exit

LOG_TAIL_LINES = 20


class KafkaJvm:
    """Start (detached), recognise, wait for, stop and kill one ``kafka.Kafka`` JVM."""

    def __init__(self, data_dir: Path, port: int, *, cache_dir: Path | None = None, heap_mb: int = 512) -> None:
        self.port = port
        self.cache_dir = cache_dir
        self.heap_mb = heap_mb
        # Absolute, so the path in java's command line identifies this JVM.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.bootstrap_servers = f"{HOST}:{port}"
        self._log_offset = 0  # where this process's start of the JVM began in broker.log

    @property
    def label(self) -> str:
        """How messages name this JVM."""
        return "Kafka"

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
        """The pid of this data dir's running JVM, if any."""
        state = self.state
        return state.pid if state and state.pid and self._is_ours(state.pid) else None

    # -- probing ------------------------------------------------------------

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is java running kafka.Kafka on this data dir's server.properties."""
        argv = command_line(pid)
        if not argv:
            return False
        properties = str(self.server_properties)
        if "kafka.Kafka" in argv and properties in argv:
            return True
        joined = argv[0]  # ps output (no /proc): one string, the properties path last
        return len(argv) == 1 and " kafka.Kafka " in joined and joined.endswith(" " + properties)

    def is_running(self) -> bool:
        """Whether this data dir's JVM is alive (it may not answer yet)."""
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

    # -- launching ------------------------------------------------------------

    def _heap_args(self) -> list[str]:
        return [f"-Xmx{self.heap_mb}m", f"-Xms{min(256, self.heap_mb)}m", "-XX:+ExitOnOutOfMemoryError"]

    def _write_files(self, server_properties: str, log4j: str, java: str, libs: Path) -> list[str]:
        """Write server.properties and log4j2.properties; java's command line without heap or main class."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server_properties.write_text(server_properties, encoding="utf-8")
        log4j_path = self.data_dir / LOG4J_PROPERTIES
        log4j_path.write_text(log4j, encoding="utf-8")
        return [java, "-cp", str(libs / "*"), f"-Dlog4j2.configurationFile={log4j_path}", "-Djava.awt.headless=true"]

    def _format_command(self, jvm: list[str], cluster_id: str, extra: Sequence[str] = ()) -> list[str]:
        """The storage tool's command line that formats this data dir for ``cluster_id``."""
        return [
            jvm[0], "-Xmx256m", *jvm[1:], "kafka.tools.StorageTool", "format",
            "-t", cluster_id, "-c", str(self.server_properties), *extra,
        ]  # fmt: skip

    def _spawn(self, jvm: list[str], state: BrokerState) -> int:
        """Launch kafka.Kafka detached and remember its pid in the state file (``state`` plus the pid)."""
        command = [jvm[0], *self._heap_args(), *jvm[1:], "kafka.Kafka", str(self.server_properties)]
        console = self.data_dir / CONSOLE_LOG
        console.write_text("", encoding="utf-8")  # this run's output only
        self._log_offset = file_size(self.log_path)  # errors quote this run's log only
        try:
            pid = launch_detached(command, console, self.data_dir)
        except (OSError, subprocess.SubprocessError, ValueError) as err:
            raise BrokerError(f"could not start java: {err}") from None
        replace(state, pid=pid).write(self.data_dir)
        return pid

    def _wait_ready(self, pid: int, deadline: float, timeout: float) -> None:
        """Return when this JVM answers; kill it and raise BrokerError (with its log) when it dies or the time is up."""
        while True:
            if not self._is_ours(pid):
                self._forget_pid()
                raise BrokerError(f"{self.label} exited while starting (port {self.port}).{self._log_excerpt()}")
            if self.answers(timeout=max(0.5, min(5.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise BrokerError(
                    f"{self.label} did not answer at {self.bootstrap_servers} within {timeout:g} s.{self._log_excerpt()}"
                )
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

    # -- stopping -------------------------------------------------------------

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop this data dir's JVM cleanly (SIGTERM, SIGKILL after ``timeout`` s); whether one was running."""
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
        """SIGKILL the JVM at once (a crash, for fault injection); no-op if not running."""
        pid = self.pid
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            wait_exit(pid, 10.0)
        self._forget_pid()

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as err:
            raise BrokerError(f"not allowed to signal {self.label} (pid {pid}): {err}") from None


def format_storage(jobs: Sequence[tuple[KafkaJvm, list[str]]]) -> None:
    """Run the storage tool for every ``(jvm, command)`` at once; BrokerError naming the first that failed.

    Each run is a JVM of its own that starts in a few seconds of CPU, so
    three nodes format in about the time of one.
    """
    running = [
        (jvm, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True))
        for jvm, command in jobs
    ]
    failures = []
    for jvm, proc in running:
        output, _ = proc.communicate()
        if proc.returncode != 0:
            failures.append((jvm, proc.returncode, output))
    if failures:
        jvm, code, output = failures[0]
        lines = output.strip().splitlines()[-LOG_TAIL_LINES:]
        name = "Kafka" if jvm.label == "Kafka" else jvm.label + "'s"
        raise BrokerError(f"formatting {name} storage in {jvm.data_dir / KAFKA_DATA} failed (exit {code}):\n" + "\n".join(lines))
