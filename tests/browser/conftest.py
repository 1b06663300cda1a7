"""A JupyterLab server on a free port, over a copy of the notebooks, for the browser test.

The classroom bench's server (``LabServer``), in test mode
(``ORDERLAB_TEST_MODE=1``) against the session's Kafka broker, with its own
settings and workspace folders so a developer's JupyterLab state cannot
change what the test sees. It is stopped (with its kernels) at the end,
also when the test fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from orderlab.bench.classroom.server import LabServer

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"


@dataclass(frozen=True)
class JupyterServer:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's package (apt-get install chromium); no browser is downloaded")
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def jupyter_server(kafka_bootstrap: str) -> Iterator[JupyterServer]:
    """The classroom bench's JupyterLab server (orderlab.bench.classroom.server), over every notebook, in test mode."""
    with LabServer(kafka_bootstrap, notebooks=REPO / "notebooks", test_mode=True, start_timeout_s=90) as server:
        yield JupyterServer(server.url, server.token, server.root, server.log)
