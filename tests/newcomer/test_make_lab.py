"""The newcomer's path: what the README tells a new user to type, from a clean
clone, with nothing set in the environment.

Only HOME and PATH reach make. The ports are free ones, chosen with the
Makefile's own make-level variables (``KAFKA_PORT``, ``LAB_PORT``,
``DASHBOARD_PORT``): ``KAFKA_BOOTSTRAP_SERVERS`` is never given, so the
Makefile's default path (its own address, exported to the recipes) is what
runs. Giving ``KAFKA_BOOTSTRAP_SERVERS`` on make's command line would export
it to the recipes and hide the bug this test is for.

The venv and the jars cache are reused (``VENV=`` and ``-o`` keep make from
reinstalling into the shared venv from the clone), so the test takes about a
minute, not ten.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
START_BOUND_S = 240.0
STOP_BOUND_S = 30.0

pytestmark = [pytest.mark.timeout(600)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_clone(target: Path) -> Path:
    """A clone of this repository with the working tree's changes on top (what would be committed)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
        elif not source.exists():
            (target / name).unlink(missing_ok=True)  # deleted in the working tree
    return target


def newcomer_env() -> dict[str, str]:
    """``env -i HOME=$HOME PATH=$PATH``, minus an activated venv on PATH."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(VENV)))
    return {"HOME": os.environ["HOME"], "PATH": path}


class Make:
    """One ``make TARGET`` in its own process group, its output in a file."""

    def __init__(self, clone: Path, target: str, variables: dict[str, str], log: Path) -> None:
        self.log = log
        self.clone = clone
        self.command = ["make", "-o", str(VENV / ".installed-stamp"), f"VENV={VENV}",
                        *(f"{name}={value}" for name, value in variables.items()), target]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Make":
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, cwd=self.clone, env=newcomer_env(), stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ended(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def interrupt(self) -> int | None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole process group; then wait (bounded)."""
        if self.process is None or self.ended():
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            return None


def wait_for(make: Make, what: str, probe, bound_s: float = START_BOUND_S):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if make.ended():
            pytest.fail(f"`{' '.join(make.command)}` ended (exit {make.process.returncode}) before {what}:\n"
                        + make.output()[-3000:])
        answer = probe()
        if answer:
            return answer
        time.sleep(1.0)
    pytest.fail(f"no {what} within {bound_s:.0f} s:\n" + make.output()[-3000:])


def http_get(url: str, timeout: float = 30.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.read().decode(errors="replace")
    except OSError:
        return None


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    return clean_clone(tmp_path / "orderlab")


@pytest.fixture()
def ports() -> Iterator[dict[str, str]]:
    chosen = {"KAFKA_PORT": str(free_port()), "LAB_PORT": str(free_port()), "DASHBOARD_PORT": str(free_port())}
    yield chosen
    # whatever happened, the broker this test started goes, with its data
    data_dir = Path(os.environ["HOME"]) / ".cache" / "orderlab" / f"broker-{chosen['KAFKA_PORT']}"
    subprocess.run([str(VENV / "bin" / "orderlab"), "broker", "stop", "--data-dir", str(data_dir)],
                   env=newcomer_env(), capture_output=True, timeout=60)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_make_lab_and_dashboard_from_a_clean_clone_with_nothing_set(clone: Path, ports: dict[str, str], tmp_path: Path) -> None:
    lab = Make(clone, "lab", ports, tmp_path / "make-lab.log").start()
    dashboard = Make(clone, "dashboard", ports, tmp_path / "make-dashboard.log")
    try:
        token = wait_for(lab, "JupyterLab's address", lambda: (re.findall(r"token=([0-9a-f]+)", lab.output()) or [None])[0])
        listing = wait_for(lab, "the lessons listed by JupyterLab",
                           lambda: http_get(f"http://127.0.0.1:{ports['LAB_PORT']}/api/contents?token={token}"))
        assert '"00_welcome.ipynb"' in listing, listing[:2000]

        dashboard.start()
        page = wait_for(dashboard, "the control room from Voila",
                        lambda: http_get(f"http://127.0.0.1:{ports['DASHBOARD_PORT']}/", timeout=120))
        assert "orderlab control room" in page, page[:2000]
    finally:
        codes = {"dashboard": dashboard.interrupt(), "lab": lab.interrupt()}
    for name, make in (("lab", lab), ("dashboard", dashboard)):
        assert make.ended(), f"make {name} still runs after Ctrl-C ({codes})"
        assert "make broker-down" in make.output(), f"make {name} did not say how to stop Kafka:\n{make.output()[-2000:]}"

    down = subprocess.run(["make", f"VENV={VENV}", "-o", str(VENV / ".installed-stamp"),
                           *(f"{k}={v}" for k, v in ports.items()), "broker-down"],
                          cwd=clone, env=newcomer_env(), capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped Kafka at 127.0.0.1:" + ports["KAFKA_PORT"] in down.stdout, down.stdout + down.stderr
    for name, port in ports.items():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", int(port))) != 0, f"{name} {port} still answers after everything stopped"


def test_broker_up_and_down_follow_kafka_bootstrap_servers_from_the_environment(clone: Path, ports: dict[str, str]) -> None:
    """A user who exports KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT gets the local broker on that port."""
    env = {**newcomer_env(), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['KAFKA_PORT']}"}
    make = ["make", f"VENV={VENV}", "-o", str(VENV / ".installed-stamp")]
    up = subprocess.run([*make, "broker-up"], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"at 127.0.0.1:{ports['KAFKA_PORT']}" in up.stdout, up.stdout
    assert f"topics ready at 127.0.0.1:{ports['KAFKA_PORT']}" in up.stdout, up.stdout
    again = subprocess.run([*make, "broker-up"], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "was already up" in again.stdout, again.stdout + again.stderr
    down = subprocess.run([*make, "broker-down"], cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and f"stopped Kafka at 127.0.0.1:{ports['KAFKA_PORT']}" in down.stdout, down.stdout + down.stderr
