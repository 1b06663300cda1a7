"""``orderlab run orders`` while its broker is away: it says so once, counts the orders waiting for
acknowledgement in its counter lines, and says when the broker is back (issue 14, item 5).

Against a broker of this module's own (``private_broker``): the shared one is never stopped.
"""

from __future__ import annotations

import re
import signal

import pytest
from roleproc import LOG_LINE, RoleProcess, parse_counters

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_the_orders_process_counts_what_waits_unacknowledged_while_the_broker_is_away(
    role_env: dict[str, str], spawn, private_broker  # noqa: ANN001
) -> None:
    env = {**role_env, "KAFKA_BOOTSTRAP_SERVERS": private_broker.bootstrap_servers}
    orders: RoleProcess = spawn("orders", "--rate", "50", "--interval", "1", env=env).wait_running()
    orders.wait_for(lambda p: any(c["orders"].get("acknowledged", 0) > 0 for _, c in p.counter_lines()), 60, "acknowledged")

    private_broker.stop()
    orders.wait_for(lambda p: "orders: lost the broker (" in p.log_text(), 60, "saying it lost the broker")
    orders.wait_for(lambda p: len(waiting(p)) >= 3, 30, "three counter lines after it")
    counts = waiting(orders)[:3]
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0, counts  # placed goes on, acknowledged does not
    (lost,) = [line for line in orders.log_text().splitlines() if "lost the broker" in line]
    assert re.search(r"; [\d,]+ orders wait unacknowledged$", lost), lost

    private_broker.start(timeout=180)
    orders.wait_for(lambda p: "orders: broker back after " in p.log_text(), 120, "saying the broker is back")
    # every order placed before the broker came back is acknowledged (later ones keep flowing, one may be in flight
    # at any counter line: the generator and the counter line tick in step)
    placed_while_away = max(c["orders"].get("placed", 0) for c in counters_before(orders, "broker back after"))
    orders.wait_for(lambda p: any(c["orders"].get("acknowledged", 0) >= placed_while_away
                                  for c in counters_after(p, "broker back after")), 60, "the waiting orders acknowledged")
    assert orders.stop(signal.SIGTERM, 30) == 0, orders.log_text()
    assert orders.log_text().count("lost the broker") == 1, orders.log_text()
    final = orders.final_counters()["orders"]
    assert final["placed"] == final["acknowledged"] + final.get("send_errors", 0) > 0, final
    assert final.get("unacknowledged", 0) == 0, final


def waiting(process: RoleProcess) -> list[int]:
    """The ``unacknowledged`` figure of each counter line since the process said it lost the broker."""
    return waiting_after(process, "lost the broker")


def waiting_after(process: RoleProcess, said: str) -> list[int]:
    """The ``unacknowledged`` figure (0 when not shown) of each counter line logged after the line containing ``said``."""
    return [counters["orders"].get("unacknowledged", 0) for counters in counters_after(process, said)]


def counters_after(process: RoleProcess, said: str) -> list[dict]:
    """The counters of each counter line logged after the line containing ``said``."""
    lines = process.log_text().splitlines()
    start = next((n for n, line in enumerate(lines) if said in line), len(lines))
    return _counters(lines[start + 1:])


def counters_before(process: RoleProcess, said: str) -> list[dict]:
    """The counters of each counter line logged before the line containing ``said``."""
    lines = process.log_text().splitlines()
    end = next((n for n, line in enumerate(lines) if said in line), len(lines))
    return _counters(lines[:end])


def _counters(lines: list[str]) -> list[dict]:
    found = []
    for line in lines:
        match = LOG_LINE.match(line)
        counters = parse_counters(match.group(3)) if match else None
        if counters is not None and "orders" in counters:
            found.append(counters)
    return found
