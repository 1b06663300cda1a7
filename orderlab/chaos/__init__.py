"""Fault scenarios with orders flowing, each reconciled by reading every topic,
the ledger and the inbox (``orderlab chaos``; lessons 07 and 08).

    from orderlab.chaos import run_scenario, compare_delivery_modes
    result = run_scenario("worker_crash", orders=150)
    result.passed, result.duplicates_in_output, result.detail

Modules: :mod:`.report` (results and the pure accounting), :mod:`.scenarios`
(the faults), :mod:`.kills` (the hard kills: SIGKILL of a broker, a role's
process, a cluster node), :mod:`.processes` (the processes they kill),
:mod:`.runner` (a Lab per scenario, settle, reconcile), :mod:`.cli` (the
command).
"""

from .cli import add_parser, run_chaos
from .report import SCENARIOS, BadRecord, ScenarioResult
from .runner import compare_delivery_modes, private_broker, private_cluster, run_scenario

__all__ = [
    "SCENARIOS",
    "BadRecord",
    "ScenarioResult",
    "add_parser",
    "compare_delivery_modes",
    "private_broker",
    "private_cluster",
    "run_chaos",
    "run_scenario",
]
