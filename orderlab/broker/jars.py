"""The broker's jars: checked tools, fetched once from Maven Central, cached.

``mvn dependency:copy-dependencies`` on the pom shipped with this package puts
every runtime jar of Apache Kafka (plus a log4j binding) into one folder,
``<cache>/kafka-<version>/libs``, for ``java -cp '<libs>/*'``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..settings import cache_dir
from .config import KAFKA_VERSION, pom_text
from .errors import BrokerError

try:
    import fcntl
except ImportError:  # Windows: the local broker is POSIX-only, but importing must work
    fcntl = None  # type: ignore[assignment]

MIN_JAVA = 17
DOCKER_HINT = "or run Kafka in Docker instead: `docker compose up -d kafka`"
_MARKER = ".complete"  # written only after a successful fetch


def default_cache_dir() -> Path:
    """``$ORDERLAB_CACHE_DIR``, else ``~/.cache/orderlab`` (read in :func:`orderlab.settings.cache_dir`)."""
    return Path(cache_dir())


def kafka_home(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}"


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output ("1.8.0_292" -> 8, "17.0.15" -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """The ``java`` on PATH, if it is Java 17 or newer; else BrokerError (one line)."""
    java = shutil.which("java")
    install = "install a JDK 17+ (e.g. `sudo apt install openjdk-17-jre-headless` or `brew install openjdk@17`)"
    if java is None:
        raise BrokerError(f"Java is not on PATH, and Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+: {install}, {DOCKER_HINT}")
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
        major = parse_java_major(done.stderr + done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        major = None
    if major is None:
        raise BrokerError(f"`{java} -version` does not work, and Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+: {install}, {DOCKER_HINT}")
    if major < MIN_JAVA:
        raise BrokerError(f"{java} is Java {major}, but Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+: {install}, {DOCKER_HINT}")
    return java


def find_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"Maven (`mvn`) is not on PATH; it is needed once to fetch the Kafka {KAFKA_VERSION} jars: "
            f"install it (e.g. `sudo apt install maven` or `brew install maven`), {DOCKER_HINT}"
        )
    return mvn


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes do not fetch or start at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def ensure_jars(cache_dir: Path | None = None, *, quiet: bool = False) -> Path:
    """The folder with the Kafka jars, fetched with Maven the first time.

    Checks Java first (it is needed anyway), Maven only when something has to
    be fetched. Jars are copied into a scratch folder that is renamed into
    place, and a marker is written last, so an interrupted fetch is simply
    redone on the next call.
    """
    find_java()
    home = kafka_home(cache_dir)
    libs, marker = home / "libs", home / _MARKER
    if marker.is_file() and libs.is_dir():
        return libs
    with file_lock(home / ".lock"):
        if marker.is_file() and libs.is_dir():  # another process fetched meanwhile
            return libs
        mvn = find_mvn()
        _say(quiet, f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)...")
        started = time.monotonic()
        pom = home / "pom.xml"
        pom.write_text(pom_text(), encoding="utf-8")
        scratch = home / f"libs.partial-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
            # pinned: an unpinned goal gets whatever plugin version the local Maven defaults to
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={scratch}",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except OSError as err:
            raise BrokerError(f"could not run {mvn}: {err}") from None
        jars = sorted(scratch.glob("*.jar")) if scratch.is_dir() else []
        if done.returncode != 0 or not jars:
            shutil.rmtree(scratch, ignore_errors=True)
            raise BrokerError(
                f"Maven could not fetch the Kafka {KAFKA_VERSION} jars (exit {done.returncode}): "
                f"{first_error(done.stdout + done.stderr)}; check access to Maven Central "
                f"(a proxy goes into ~/.m2/settings.xml), {DOCKER_HINT}"
            )
        size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
        shutil.rmtree(libs, ignore_errors=True)
        os.replace(scratch, libs)
        marker.write_text(f"{len(jars)} jars, {size_mb:.0f} MB, Kafka {KAFKA_VERSION}\n", encoding="utf-8")
        _say(quiet, f"fetched {len(jars)} jars ({size_mb:.0f} MB) in {time.monotonic() - started:.1f} s into {libs}")
        return libs


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_error(output: str) -> str:
    """The most telling line of Maven's output, for a one-line message."""
    lines = [line.strip() for line in _ANSI.sub("", output).splitlines() if line.strip()]
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    picked = next((line for line in errors if line), lines[-1] if lines else "no output")
    return picked if len(picked) <= 300 else picked[:297] + "..."
