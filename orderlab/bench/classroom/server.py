"""This venv's JupyterLab on a free port over a temporary folder holding lesson 05, in normal mode.

Its settings, workspaces and runtime folders are its own (a teacher's
JupyterLab state cannot change the run; the news prompt stays off the
screenshots), and test mode is off: the lesson runs as in class. Stopped
with its kernels at the end, also when the run fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ...settings import TEST_MODE_VARIABLE
from .errors import ClassroomError

LESSON = "05_control_room.ipynb"


def lesson_path() -> Path:
    """Lesson 05 in the repository this orderlab runs from (an editable install: ``make setup``)."""
    path = Path(__file__).resolve().parents[3] / "notebooks" / LESSON
    if not path.exists():
        raise ClassroomError(f"{LESSON} is not at {path}: run the classroom bench from an orderlab checkout (make setup)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """``with LabServer(bootstrap) as server:`` JupyterLab answers at ``server.url`` until the block ends."""

    def __init__(self, bootstrap_servers: str, *, start_timeout_s: float = 120.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.start_timeout_s = start_timeout_s
        self.token = secrets.token_hex(16)
        self.port = 0
        self.base: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        if self.base is None:
            raise ClassroomError("JupyterLab is not started")
        return self.base / "notebooks"

    @property
    def runtime_dir(self) -> Path:
        return self.root.parent / "runtime"

    @property
    def log(self) -> Path:
        return self.root.parent / "jupyter.log"

    def notebook_url(self, name: str = LESSON) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"  # a fresh workspace: only this tab

    def start(self) -> "LabServer":
        self.base = Path(tempfile.mkdtemp(prefix="orderlab-classroom-"))
        self.root.mkdir()
        shutil.copyfile(lesson_path(), self.root / LESSON)
        env = {key: value for key, value in os.environ.items() if key != TEST_MODE_VARIABLE}  # normal mode: as in class
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "JUPYTER_CONFIG_DIR": str(self.base / "config"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.base / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
        })
        notification = self.base / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        self.port = free_port()
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}", "--ServerApp.port_retries=0",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-600:].strip().splitlines()[-1:] or ["(empty log)"]
                self.stop()
                raise ClassroomError(f"JupyterLab did not start within {self.start_timeout_s:.0f} s: {tail[0]}")
            time.sleep(0.5)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/{path}?token={self.token}", timeout=10) as response:
            return json.loads(response.read())

    def kernel_connection_file(self, notebook: str = LESSON) -> Path:
        """The connection file of the kernel the open notebook runs on."""
        for session in self.api("sessions"):
            if Path(session.get("path", "")).name == notebook and session.get("kernel"):
                path = self.runtime_dir / f"kernel-{session['kernel']['id']}.json"
                if path.exists():
                    return path
                raise ClassroomError(f"the kernel of {notebook} has no connection file at {path}")
        raise ClassroomError(f"no kernel runs {notebook} on the JupyterLab server")

    def stop(self) -> None:
        """Shut down the kernels and the server (asked first, then its process group ended); remove its folder."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                request = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST", data=b"")
                urllib.request.urlopen(request, timeout=10).close()
                process.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                    process.wait(20)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()
