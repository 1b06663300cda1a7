"""The processes a hard-kill scenario kills: ``orderlab run ROLE`` or ``orderlab demo``, each in a process group
of its own, its log lines kept, killed with SIGKILL (the whole group) or stopped with SIGTERM.

Why real processes: a thread cannot be SIGKILLed. A kill that is real takes
with it everything the process had in memory (the producer's buffer, the
SMTP relay's helper, the transaction it had open) at a moment it was not
told about, which is what the hard-kill scenarios reconcile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Mapping, Sequence

from ..settings import FAULT_HOLD_VARIABLE, Settings, child_environment

STOP_TIMEOUT_S = 20.0  # a role drains in 8 s (run_role's drain_timeout_s): SIGKILL after this


class ChildProcess:
    """``python -m orderlab ARGS`` for ``settings``, in a new session (its own process group).

    Its stdout and stderr are read in a thread and kept (:attr:`lines`), so
    a scenario can wait for a line the child logs (a fault injection that
    says it holds) and a failed scenario can show the end of the log.
    """

    def __init__(self, args: Sequence[str], settings: Settings, *, extra_env: Mapping[str, str] | None = None,
                 label: str | None = None) -> None:
        self.args = tuple(args)
        self.label = label or " ".join(("orderlab", *self.args))
        self.lines: list[str] = []
        self._lock = threading.Lock()
        env = child_environment(settings, {"PYTHONUNBUFFERED": "1", **(extra_env or {})})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orderlab", *self.args], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"chaos-log-{self.process.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        if stream is None:
            return
        for raw in stream:
            with self._lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """Everything the child printed so far."""
        with self._lock:
            return "\n".join(self.lines)

    def tail(self, count: int = 5) -> str:
        with self._lock:
            return " | ".join(self.lines[-count:])

    def wait_for_line(self, fragment: str, timeout: float) -> bool:
        """Wait (bounded) until a line of the child's output contains ``fragment``; False if it ended or the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(fragment in line for line in self.lines):
                    return True
            if not self.alive:
                break
            time.sleep(0.1)
        with self._lock:
            return any(fragment in line for line in self.lines)

    def wait(self, timeout: float) -> int | None:
        """The exit code once the child ended within ``timeout``, else None."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self) -> None:
        """SIGKILL the child and every process of its group (its SMTP helper, a demo's roles); wait for it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._reader.join(5)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (a clean drain), SIGKILL of the group after ``timeout``; the exit code (None when killed). Idempotent."""
        if self.alive:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            code = self.wait(timeout)
            if code is None:
                self.kill_group()
                return None
        else:
            # the leader is gone: end anything it left in its group (a helper that outlived it)
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._reader.join(5)
        return self.process.returncode


def role_process(role: str, settings: Settings, *, hold_before_commit: int | None = None) -> ChildProcess:
    """``orderlab run ROLE`` for ``settings``; with ``hold_before_commit``, under ``ORDERLAB_FAULT_HOLD_BEFORE_COMMIT``."""
    extra = {FAULT_HOLD_VARIABLE: str(hold_before_commit)} if hold_before_commit is not None else {}
    return ChildProcess(["run", role], settings, extra_env=extra)
