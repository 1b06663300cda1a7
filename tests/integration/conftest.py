"""A three-node cluster shared by the cluster tests (``-m cluster``): starting one costs 15-90 s on a busy machine.

Started by :class:`orderlab.failover.SpareCluster` (temporary folder, free
ports), as lesson 09 starts its own; stopped (SIGKILL after a bound) and its
folder removed when the session ends, also when a test fails. Each test
leaves every node running.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from orderlab.broker import LocalCluster
from orderlab.broker.procs import command_line
from orderlab.failover import SpareCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    spare = SpareCluster().start()
    folder = None
    pids: list[int] = []
    try:
        started = spare.wait()
        folder = started.data_dir
        yield started
    finally:
        if spare.cluster is not None:
            pids = [pid for node in spare.cluster.nodes if (pid := node.pid) is not None]
        spare.stop()
    assert all(command_line(pid) is None for pid in pids), "a node outlived stop()"
    assert folder is None or not folder.exists(), f"{folder} was not removed"
