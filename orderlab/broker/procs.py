"""Small process and port helpers for a broker that outlives its starter."""

from __future__ import annotations

import os
import random
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def default_port(bootstrap_servers: str | None) -> int:
    """The port of KAFKA_BOOTSTRAP_SERVERS' first address if it is local, else 9092."""
    first = (bootstrap_servers or "").split(",")[0].strip()
    first = first.split("://", 1)[-1]  # tolerate "PLAINTEXT://host:port"
    host, sep, port = first.rpartition(":")
    if sep and host in LOCAL_HOSTS and port.isdigit() and 0 < int(port) < 65536:
        return int(port)
    return DEFAULT_PORT

# Runs in a throwaway interpreter: it starts the command in a new session and
# exits at once, so the command is re-parented to init. It then survives the
# caller (a CLI, a notebook kernel), is never left as the caller's zombie, and
# gets no SIGHUP or Ctrl+C meant for the caller's terminal or process group.
_LAUNCHER = """\
import subprocess, sys
out = open(sys.argv[1], "ab")
child = subprocess.Popen(sys.argv[3:], cwd=sys.argv[2], stdin=subprocess.DEVNULL,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
child.returncode = 0  # detached on purpose: no "still running" warning
print(child.pid)
"""


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
IANA_EPHEMERAL = (49152, 65535)  # where other systems (macOS) take outgoing connections' ports from
LOWEST_PICKED = 20000  # below: ports other services tend to claim


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes outgoing connections' local ports from (Linux's setting, else IANA's)."""
    try:
        low, high = (int(field) for field in EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return IANA_EPHEMERAL


def free_port(attempts: int = 200) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range.

    Why not the port the kernel hands out for ``bind(0)``: that one is in the
    range outgoing connections take their local ports from, so while a broker
    node is down (a lesson's kill, a restart), a client's new connection can
    take its port, and the node cannot listen there again. (The likely cause
    of a clean-clone CI failure: a restarted cluster node died at once, and
    the next start found its port "in use by another process".)
    """
    low = LOWEST_PICKED
    high = ephemeral_ports()[0] - 1
    if high > low:
        for port in random.sample(range(low, high + 1), min(attempts, high - low + 1)):
            if port_is_free(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room below the range: the kernel's pick
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port.

    SO_REUSEADDR, as Kafka's own acceptor uses it, so connections still in
    TIME_WAIT from a broker that just stopped do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def launch_detached(command: list[str], output: Path, cwd: Path) -> int:
    """Start ``command`` detached (own session, parent init), output appended to ``output``; its pid."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", _LAUNCHER, str(output), str(cwd), *command],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise OSError(f"could not start {command[0]}: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return int(done.stdout.strip())


def command_line(pid: int) -> list[str] | None:
    """The argv of a live (not zombie) process, or None (from ps: one joined string)."""
    proc = Path("/proc")
    if proc.is_dir():
        try:
            state = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        if state in ("Z", "X") or not raw:
            return None
        return raw.rstrip(b"\0").decode(errors="replace").split("\0")
    try:  # no /proc (macOS): ps, whose command column is space-joined
        done = subprocess.run(["ps", "-o", "stat=", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    except OSError:
        return None
    fields = done.stdout.strip().split(None, 1)
    if done.returncode != 0 or len(fields) < 2 or fields[0].startswith("Z"):
        return None
    return [fields[1]]  # one space-joined string: ps cannot tell argv apart


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to end (it need not be our child); whether it did."""
    try:
        fd = os.pidfd_open(pid)  # type: ignore[attr-defined]  # Linux 5.3+
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            readable, _, _ = select.select([fd], [], [], max(timeout, 0.0))
            return bool(readable) or command_line(pid) is None
        finally:
            os.close(fd)
    deadline = time.monotonic() + timeout
    while command_line(pid) is not None:  # fallback: poll with a deadline
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int, since: int = 0) -> list[str]:
    """The last ``lines`` lines of ``path``, written after byte offset ``since``."""
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            start = since if since <= end else 0  # smaller than before: it was rolled over
            handle.seek(max(start, end - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def free_consecutive_ports(count: int, attempts: int = 100) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that are all free right now."""
    for _ in range(attempts):
        first = free_port()
        if first + count <= 65536 and all(port_is_free(first + offset) for offset in range(1, count)):
            return first
    raise OSError(f"found no {count} consecutive free ports on {HOST} in {attempts} attempts")
