"""Adding a role takes one module and one topology entry (``extra_role.py``):
the Lab runs it beside the seed's roles, and ``orderlab run`` runs it as a
process, against a real broker, with no other module edited."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from extra_role import TOPOLOGY
from roleproc import place_orders

from orderlab.events import decode_confirmed
from orderlab.lab import Lab
from orderlab.lessons import roles_map
from orderlab.reconcile import read_to_end
from orderlab.settings import Settings
from orderlab.topics import ensure_topics

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
TOPOLOGY_NAME = "extra_role:TOPOLOGY"


def confirmed_per_currency(settings: Settings) -> Counter[str]:
    return Counter(decode_confirmed(r.value).order.currency for r in read_to_end(settings, settings.order_confirmed_topic).values())


def test_the_lab_runs_the_extra_role_from_its_topology_entry(proc_settings: Settings) -> None:
    settings = proc_settings.with_(topology=TOPOLOGY_NAME)
    with Lab(settings, topology=TOPOLOGY, rate=0, workers=2) as lab:
        lab.generate(60, rate=200)
        last = lab.wait_until(lambda s: s.settled >= 60 and s.totals["currency"]["consumed"] >= s.confirmed, 60)
        assert last.settled == 60 and last.totals["currency"]["consumed"] == last.confirmed
        assert settings.group_id("currency") in lab.snapshot().lag
        counted = {code: n for code, n in lab.snapshot().totals["currency"].items() if code in ("EUR", "USD", "GBP") and n}
    assert counted == dict(confirmed_per_currency(settings))
    assert roles_map(settings).loc["currency", "reads"] == settings.order_confirmed_topic


def test_orderlab_run_runs_the_extra_role_as_a_process(proc_settings: Settings, role_env: dict[str, str], spawn) -> None:  # noqa: ANN001
    env = {**role_env, "ORDERLAB_TOPOLOGY": TOPOLOGY_NAME,
           "PYTHONPATH": os.pathsep.join(filter(None, (str(HERE), role_env.get("PYTHONPATH"))))}
    ensure_topics(proc_settings.with_(topology=TOPOLOGY_NAME))
    place_orders(proc_settings, 40)
    payments = spawn("transactions", "--interval", "1", env=env).wait_running()
    counter = spawn("currency", "--interval", "1", env=env).wait_running()
    expected: Counter[str] = Counter()

    def counted_everything(process) -> bool:  # noqa: ANN001
        nonlocal expected
        expected = confirmed_per_currency(proc_settings)
        lines = process.counter_lines()
        return bool(lines) and sum(expected.values()) > 0 and lines[-1][1].get("currency", {}).get("consumed", 0) == sum(expected.values())

    counter.wait_for(counted_everything, 60, "counting every confirmed order")
    assert counter.stop() == 0 and payments.stop() == 0
    final = counter.final_counters()["currency"]
    assert {code: final.get(code, 0) for code in expected} == dict(expected)


def test_an_unknown_role_is_one_line_naming_the_topology_s_roles(role_env: dict[str, str], spawn) -> None:  # noqa: ANN001
    env = {**role_env, "ORDERLAB_TOPOLOGY": TOPOLOGY_NAME,
           "PYTHONPATH": os.pathsep.join(filter(None, (str(HERE), role_env.get("PYTHONPATH"))))}
    process = spawn("nosuchrole", env=env)
    assert process.popen.wait(60) == 2
    assert process.log_text().strip() == ("orderlab: unknown role 'nosuchrole' in topology 'seed+currency'; "
                                          "choose one of orders, transactions, email, analytics, currency")
