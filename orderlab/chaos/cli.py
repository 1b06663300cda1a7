"""``orderlab chaos``: every scenario against a broker of its own, as a table or JSON.

It starts a private LocalBroker on a free port in a temporary folder (so
broker_restart may stop it, and the shared dev broker is never touched),
runs the scenarios one after another (``--repeat N``: N rounds of them,
since a race with a restarting broker may show once in tens of runs),
compares worker_crash in both delivery modes, and stops the broker at the
end, even on failure or Ctrl-C. Exit code 0 only when every run passed.
``--brokers 3`` runs the cluster scenarios (leader_kill) on a private
three-node cluster instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from typing import Any, Iterator, Sequence

from ..broker import BrokerError
from ..options import EXIT_FAILED, EXIT_USAGE, at_least, positive
from ..settings import Settings
from .report import CLUSTER_SCENARIOS, SCENARIOS, ScenarioResult, format_summary, format_table, summarise
from .runner import CLUSTER_BROKERS, MIN_ORDERS, private_broker, private_cluster, run_scenario

BROKER_COUNTS = (1, CLUSTER_BROKERS)


def _repeat(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--repeat must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--repeat must be at least 1, got {value}")
    return value


def add_parser(subparsers: Any) -> None:
    """Add the ``chaos`` subcommand to the ``orderlab`` CLI."""
    chaos = subparsers.add_parser(
        "chaos",
        help="run fault scenarios against a broker of its own and reconcile every order",
        description="Runs fault scenarios (" + ", ".join(SCENARIOS) + ") with orders flowing, against a private "
        "local broker on a free port, and reconciles each by reading every topic, the ledger and the inbox. "
        "Exit code 0 only when every scenario passes: nothing lost, nothing charged or e-mailed twice, every "
        "bad record in a dead-letter topic with its reason.",
    )
    chaos.add_argument("--scenario", action="append", choices=SCENARIOS, metavar="NAME",
                       help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}")
    chaos.add_argument("--orders", type=at_least("--orders", MIN_ORDERS), default=300, help="valid orders per scenario (default 300)")
    chaos.add_argument("--rate", type=positive(float, "--rate", what="a number of orders per second", finite_hint=False),
                       default=200.0, help="orders per second (default 200)")
    chaos.add_argument("--exactly-once", action="store_true",
                       help="run the scenarios with transactional processing (worker_crash is compared in both modes anyway)")
    chaos.add_argument("--no-comparison", action="store_true",
                       help="skip the second worker_crash run in the other delivery mode")
    chaos.add_argument("--repeat", type=_repeat, default=1, metavar="N",
                       help="run each scenario N times on the same private broker and sum up the losses (default 1)")
    chaos.add_argument("--brokers", type=int, choices=BROKER_COUNTS, default=1,
                       help=f"1 (default): every scenario but {', '.join(CLUSTER_SCENARIOS)}, on a private broker; "
                       f"{CLUSTER_BROKERS}: the cluster scenarios ({', '.join(CLUSTER_SCENARIOS)}) on a private "
                       f"{CLUSTER_BROKERS}-node cluster")
    chaos.add_argument("--json", action="store_true", help="print the results as JSON")
    chaos.set_defaults(func=cmd_chaos)


@contextlib.contextmanager
def _quieter(logger_name: str, level: int) -> Iterator[None]:
    """``logger_name`` at ``level`` for the block, then as it was (the command may run inside a test or a kernel)."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def cmd_chaos(args: argparse.Namespace) -> int:
    base = Settings.from_env()
    brokers = getattr(args, "brokers", 1)
    on_cluster = brokers == CLUSTER_BROKERS
    default = CLUSTER_SCENARIOS if on_cluster else tuple(name for name in SCENARIOS if name not in CLUSTER_SCENARIOS)
    names: Sequence[str] = list(dict.fromkeys(args.scenario or default))
    single = [name for name in names if name not in CLUSTER_SCENARIOS]
    if not single:  # `--scenario leader_kill` alone: no single broker to start beside its cluster
        brokers, on_cluster = CLUSTER_BROKERS, True
    if on_cluster and single:
        print(f"orderlab chaos: --brokers {brokers} runs {', '.join(CLUSTER_SCENARIOS)} only, not {', '.join(single)}: "
              "run those with --brokers 1", file=sys.stderr)
        return EXIT_USAGE
    eos = bool(args.exactly_once or base.exactly_once)
    # the roles' retry warnings are the faults we inject: the report tells the story
    quiet = contextlib.nullcontext() if getattr(args, "verbose", False) else _quieter("orderlab.services", logging.ERROR)
    try:
        with quiet:
            report = run_chaos(names, orders=args.orders, rate=args.rate, exactly_once=eos, brokers=brokers,
                               compare=not args.no_comparison, settings=base, progress=_progress, repeat=args.repeat)
    except BrokerError as exc:
        print(f"orderlab chaos: could not run a local broker: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["passed"] else EXIT_FAILED


def run_chaos(
    names: Sequence[str],
    *,
    orders: int = 300,
    rate: float = 200.0,
    exactly_once: bool = False,
    compare: bool = True,
    settings: Settings | None = None,
    progress: Any = None,
    repeat: int = 1,
    brokers: int = 1,
) -> dict[str, Any]:
    """Run ``names`` on a private broker (``brokers=3``: a private three-node cluster), ``repeat`` rounds
    of them; the JSON-ready report.

    On one broker a cluster scenario (leader_kill) starts a private cluster
    of its own. The worker_crash comparison runs once, after the last round,
    against the first round's worker_crash: one run per mode makes the
    difference plain.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a whole number >= 1, got {repeat!r}")
    base = settings or Settings.from_env()
    results: list[ScenarioResult] = []
    comparison: dict[str, ScenarioResult] = {}
    if brokers not in BROKER_COUNTS:
        raise ValueError(f"brokers must be one of {BROKER_COUNTS}, got {brokers!r}")
    on_cluster = brokers == CLUSTER_BROKERS
    with private_cluster(progress) if on_cluster else private_broker(progress) as broker:
        for run in range(1, repeat + 1):
            for number, name in enumerate(names, 1):
                step = f"[{number}/{len(names)}]" if repeat == 1 else f"[run {run}/{repeat}] [{number}/{len(names)}]"
                if progress:
                    progress(f"{step} {name}")
                if results:
                    # a broker_restart whose broker did not come back (its start timed
                    # out on a busy machine) fails alone instead of every run after it
                    broker.start()
                result = run_scenario(name, orders=orders, rate=rate, exactly_once=exactly_once, settings=base,
                                      progress=progress, **({"cluster": broker} if on_cluster else {"broker": broker}))
                results.append(dataclasses.replace(result, run=run))
                if progress:
                    progress(f"{step} {name}: {'PASS' if result.passed else 'FAIL'} in {result.seconds:.1f} s"
                             + (f", {result.lost} lost" if result.lost else ""))
        if compare and "worker_crash" in names:
            first = next(r for r in results if r.name == "worker_crash")
            if progress:
                progress(f"worker_crash again, {'at-least-once' if exactly_once else 'exactly-once'}, to compare")
            other = run_scenario("worker_crash", orders=orders, rate=rate, exactly_once=not exactly_once,
                                 settings=base, broker=broker, progress=progress)
            comparison = {("exactly_once" if r.exactly_once else "at_least_once"): r for r in (first, other)}
    passed = all(r.passed for r in results) and all(r.passed for r in comparison.values())
    report: dict[str, Any] = {
        "scenarios": [r.as_dict() for r in results], "repeat": repeat, "brokers": brokers, "summary": summarise(results),
        "passed": passed,
    }
    if comparison:
        report["exactly_once_comparison"] = {
            "scenario": "worker_crash",
            "duplicates_in_output": {mode: r.duplicates_in_output for mode, r in comparison.items()},
            "double_charged": {mode: r.double_charged for mode, r in comparison.items()},
            **{mode: r.as_dict() for mode, r in comparison.items()},
        }
    return report


def format_report(report: dict[str, Any]) -> str:
    results = [ScenarioResult(**values) for values in report["scenarios"]]
    lines = [format_table(results), ""]
    repeated = report.get("repeat", 1) > 1
    lines += [f"{r.name}{f' (run {r.run})' if repeated else ''}: {r.detail}" for r in results]
    if repeated:
        lines += ["", f"{report['repeat']} runs of each scenario:", format_summary(report["summary"])]
    comparison = report.get("exactly_once_comparison")
    if comparison:
        dups = comparison["duplicates_in_output"]
        lines += [
            "",
            "worker_crash, delivery modes compared: duplicate outcome records "
            f"at-least-once {dups.get('at_least_once')}, exactly-once {dups.get('exactly_once')}; "
            f"double charges {comparison['double_charged'].get('at_least_once')} and "
            f"{comparison['double_charged'].get('exactly_once')}",
        ]
    lines.append("")
    lines.append("PASSED: every scenario" if report["passed"] else "FAILED: see the scenarios marked FAIL")
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)
