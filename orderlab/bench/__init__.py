"""``orderlab bench``: how fast the pipeline runs, measured against what Kafka alone allows.

One run on the broker it is pointed at measures the ceiling (the pipeline's
Kafka work with no application code), the pipeline's sustained throughput,
order → e-mail latency at two rates, the generator's rate accuracy and the
control room's chart refresh rate, and compares them with the targets. It
also reads the CPU one order costs the ceiling, the pipeline and each role
run alone, in this process and on the whole machine: the pipeline's four
roles share one process and its GIL, and the broker and the SMTP helpers
share the machine's cores, so these say where its time goes and whether the
target rate fits on the machine at all.

``orderlab bench --classroom`` measures what a class sees instead: lesson 05
in JupyterLab and a browser on the same machine, the rate slider moved up
through the page until a step is not held (:mod:`orderlab.bench.classroom`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..limits import MAX_RATE
from ..options import UserError, add_connection_options, at_least, positive, settings_from
from .report import TARGETS, BenchReport, format_table

__all__ = ["BenchReport", "TARGETS", "add_parser", "cmd_bench", "format_table"]

MIN_ORDERS = 100  # fewer finish too fast for a rate or a percentile to mean anything


def add_parser(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to the ``orderlab`` parser."""
    bench = subparsers.add_parser(
        "bench", help="measure throughput, latency, rate accuracy and chart refresh against the Kafka-only ceiling",
        description="Measure on the broker it is pointed at, in one run: the ceiling (plain kafka-python doing the "
                    "pipeline's Kafka work), the pipeline's sustained throughput, order-to-e-mail latency at 100 and "
                    "1000 orders/s, rate accuracy, the control room's chart refresh rate, and the CPU one order costs "
                    "the ceiling, the pipeline and each role alone (this process and the whole machine).",
    )
    add_connection_options(bench)
    bench.add_argument("--orders", type=at_least("--orders", MIN_ORDERS), default=None, help="orders for the ceiling and pipeline runs (default 20000; 300 with --quick; with --classroom the bare pipeline's)")
    bench.add_argument("--workers", type=int, choices=range(1, 9), default=2, metavar="1-8", help="transactions workers (default 2)")
    bench.add_argument("--quick", action="store_true", help="a tiny load and short windows: checks that the bench works, not how fast")
    bench.add_argument("--plot", metavar="PNG", default=None, help="also draw the figures to this PNG file")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument("--classroom", action="store_true",
                       help="measure what a class sees: lesson 05 in JupyterLab and headless Chromium, the rate slider "
                            "stepped up (--hold seconds a step) until a step is not held; saves the held rate for the control room")
    bench.add_argument("--hold", type=positive(float, "--hold"), default=None, metavar="SECONDS",
                       help="with --classroom: seconds at each step of the slider, judged on the last 30 s "
                            "(half the hold when shorter; default 60; 14 with --quick)")
    bench.add_argument("--steps", type=rate_list, default=None, metavar="RATE,RATE,...",
                       help="with --classroom: these slider rates, lowest first, instead of the steps from the bare rate "
                            f"(multiples of 10, at most {MAX_RATE}); the control room's saved held rate stays the last full run's")
    bench.add_argument("--artifacts", metavar="DIR", default=None,
                       help="with --classroom: where the screenshots go (default artifacts/classroom)")
    bench.set_defaults(func=cmd_bench)


def rate_list(text: str) -> tuple[int, ...]:
    """``--steps 100,250,500``: slider rates, rising, each a multiple of 10 from 10 to the slider's top."""
    try:
        rates = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps must be whole numbers separated by commas, got {text!r}") from None
    if not rates or any(rate < 10 or rate > MAX_RATE or rate % 10 for rate in rates):
        raise argparse.ArgumentTypeError(f"--steps must be multiples of 10 from 10 to {MAX_RATE} (the slider's), got {text!r}")
    if list(rates) != sorted(set(rates)):
        raise argparse.ArgumentTypeError(f"--steps must rise, each rate once, got {text!r}")
    return rates


def cmd_bench(args: argparse.Namespace) -> int:
    if args.classroom:
        from .classroom import cmd_classroom

        return cmd_classroom(args)
    for option, value in (("--hold", args.hold), ("--steps", args.steps), ("--artifacts", args.artifacts)):
        if value is not None:
            raise UserError(f"{option} is an option of the classroom run: add --classroom, or leave {option} out")
    from .runner import BenchPlan, run_bench

    settings = settings_from(args)
    plan = BenchPlan.tiny() if args.quick else BenchPlan.standard()
    if args.orders is not None:
        plan = plan.with_orders(args.orders)
    plan = plan.with_workers(args.workers)
    report = run_bench(settings, plan, show_progress=not args.json)
    if args.plot:
        from .plot import save_plot

        save_plot(report, args.plot)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_table(report))
    return 0
