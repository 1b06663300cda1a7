"""``orderlab lab``: JupyterLab on the lessons, or the control room alone in Voila.

It runs the server in the foreground, as a child of this process, so that
what a teacher sees when it ends (Ctrl-C) comes last: that Kafka keeps
running, and how to stop it. The broker is left up on purpose: ``make lab``
and ``make dashboard`` share one broker in two terminals, and stopping it
with either would pull it from under the other.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .clients import check_broker
from .settings import Settings
from .topics import ensure_topics


class ServeError(Exception):
    """The server cannot be started; the message says what to do."""


@dataclass(frozen=True)
class ServeRequest:
    """What to serve: the notebooks folder in JupyterLab, or one notebook in Voila."""

    path: Path
    port: int
    dashboard: bool = False


def server_command(request: ServeRequest, *, bin_dir: Path | None = None, as_root: bool | None = None) -> list[str]:
    """The ``jupyter lab`` or ``voila`` command line for ``request``, bound to 127.0.0.1.

    ``bin_dir`` is where the programs live (this interpreter's folder, so a
    venv's own Jupyter runs even when the venv is not activated).
    """
    folder = Path(sys.executable).parent if bin_dir is None else bin_dir
    root = os.geteuid() == 0 if as_root is None else as_root
    if request.dashboard:
        command = [_program(folder, "voila"), str(request.path), f"--port={request.port}", "--Voila.ip=127.0.0.1",
                   "--no-browser", "--show_tracebacks=True"]
    else:
        command = [_program(folder, "jupyter"), "lab", f"--notebook-dir={request.path}", f"--port={request.port}",
                   "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
        if root:
            command.append("--allow-root")  # Jupyter refuses root without it (containers, CI machines)
    return command


def _program(folder: Path, name: str) -> str:
    candidate = folder / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServeError(f"{name} is not installed here: run `make setup` (it installs orderlab[dev] into .venv)")
    return found


def closing_note(settings: Settings) -> str:
    """What a teacher reads when the server ends: the broker is still up, and how to stop it."""
    return (f"Kafka keeps running at {settings.bootstrap_servers} for the next session; "
            "`make broker-down` stops it (or `orderlab broker stop`).")


def serve(request: ServeRequest, settings: Settings) -> int:
    """Check Kafka, create the topics, run the server until it ends; returns its exit code."""
    if not request.path.exists():
        raise ServeError(f"{request.path} does not exist: run this from the orderlab folder, or give the path")
    check_broker(settings)
    ensure_topics(settings)
    command = server_command(request)
    what = "Voila (the control room)" if request.dashboard else "JupyterLab"
    print(f"starting {what} on http://127.0.0.1:{request.port}/ against Kafka at {settings.bootstrap_servers}; "
          "Ctrl-C stops it", flush=True)
    child = subprocess.Popen(command)
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                # Ctrl-C reached the server as well (one process group). In a
                # terminal JupyterLab would ask "Shutdown this server?" and wait
                # for a second Ctrl-C; one is enough here: SIGTERM stops it now.
                child.send_signal(signal.SIGTERM)
    finally:
        print(f"\n{what} stopped. {closing_note(settings)}", flush=True)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM, 130) else code
