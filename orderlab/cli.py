"""The ``orderlab`` command.

Every user error (bad argument, bad environment value, no broker) ends in
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Sequence

from . import __version__
from .clients import BrokerUnavailable
from .events import EventError
from .options import (
    EXIT_FAILED, EXIT_USAGE, UserError, add_connection_options, positive, probability, settings_from,
)
from .settings import Settings, SettingsError, fault_hold_before_commit, order_rate
from .topology import TopologyError


# -- commands ----------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline headless; the ledger's location is checked first, before connecting to Kafka."""
    from .demo import format_report, run_demo

    settings = settings_from(args)
    _check_ledger(settings)
    report = run_demo(
        args.orders, args.rate, settings=settings, workers=args.workers,
        decline_probability=args.decline_probability, timeout_s=args.timeout, show_progress=not args.json, keep=args.keep,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report))
    return 0 if report.ok else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """One role until SIGTERM. Bad settings fail here, before the process connects to Kafka: the rate
    (--rate, else $ORDERLAB_RATE, else 10 orders/s) and, for the roles that keep one, the ledger's location."""
    from .process import configure_logging, run_role

    from .topology import Resource, load_topology

    settings = settings_from(args)
    rate = args.rate if args.rate is not None else order_rate()
    if Resource.LEDGER in load_topology(settings.topology).role(args.role).needs:
        _check_ledger(settings)
    hold = fault_hold_before_commit()
    configure_logging()
    return run_role(
        args.role, settings, workers=args.workers, rate=rate, interval_s=args.interval,
        decline_probability=args.decline_probability, latency_ms=args.latency_ms, instance=args.instance,
        hold_before_commit=hold,
    )


def _check_ledger(settings: Settings) -> None:
    """An unusable ORDERLAB_DB_URL as one ``bad setting`` line now, not after the wait for the broker.

    It creates the ledger's folder, as the ledger itself would a moment
    later; the ledger checks again when it opens (the Lab, the notebooks).
    """
    from .ledger import prepare_location

    prepare_location(settings.db_path, settings.db_setting)


def cmd_place(args: argparse.Namespace) -> int:
    """Place one order through the Orders Backend.

    The order is checked here first (its SKUs and quantities, the e-mail,
    the currency) and every problem is reported in one line; nothing is
    sent to Kafka for an order that would be refused.
    """
    from .clients import check_broker, make_producer
    from .wiring import Wiring
    from .topics import ensure_topics

    settings = settings_from(args)
    payload = _order_payload(args)
    check_broker(settings)
    ensure_topics(settings)
    producer = make_producer(settings)
    backend = Wiring(settings).service("orders", producer=producer)
    backend.start()
    try:
        placed = backend.submit(payload)
    finally:
        backend.stop()
        producer.close(timeout=5)
    if placed.accepted:
        print(f"placed order {placed.order_id} on {settings.order_details_topic}")
        return 0
    print(f"orderlab: order rejected (sent to {settings.dlq_topic(settings.order_details_topic)}): {placed.reason}", file=sys.stderr)
    return EXIT_FAILED


def _order_payload(args: argparse.Namespace) -> dict[str, Any]:
    """The order ``orderlab place`` was asked for; a :class:`UserError` lists every problem with it."""
    import time
    import uuid

    from .catalogue import BY_SKU
    from .events import currency_problem, email_problem, quantity_problem

    problems: list[str] = []
    unknown: list[str] = []
    items = []
    for spec in args.item:
        sku, _, quantity = spec.partition("x")
        product = BY_SKU.get(sku.strip().upper())
        if product is None:
            unknown.append(sku)
        try:
            count = int(quantity or "1")
        except ValueError:
            problems.append(f"item {spec!r}: quantity must be a whole number (SKUxN, e.g. KB-001x2)")
            continue
        if product is None:
            continue
        problem = quantity_problem(product.sku, count)
        if problem is not None:
            problems.append(problem)
        items.append({"sku": product.sku, "name": product.name, "quantity": count, "unit_price_cents": product.price_cents})
    if unknown:
        listed = ", ".join(repr(sku) for sku in unknown)
        problems.insert(0, f"unknown SKU{'s' if len(unknown) > 1 else ''} {listed} (known: {', '.join(sorted(BY_SKU))})")
    problems += [problem for problem in (email_problem(args.email), currency_problem(args.currency)) if problem is not None]
    if problems:
        raise UserError(f"order not placed: {'; '.join(problems)}")
    return {
        "order_id": str(uuid.uuid4()),
        "customer_id": args.customer_id,
        "customer_email": args.email,
        "items": items,
        "total_cents": sum(item["quantity"] * item["unit_price_cents"] for item in items),
        "currency": args.currency,
        "created_at": time.time(),
    }


def cmd_topics(args: argparse.Namespace) -> int:
    from .clients import check_broker
    from .topics import ensure_topics

    settings = settings_from(args, topic_suffix=args.suffix)
    check_broker(settings)
    plan = ensure_topics(settings)
    print(f"topics ready at {settings.bootstrap_servers}: " + ", ".join(f"{name} ({count})" for name, count in plan.items()))
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove what finished runs left on the broker (topics, groups, lesson ledgers); a running one is left alone."""
    from .cleanup import clean

    settings = settings_from(args)
    found = clean(settings, dry_run=args.dry_run)
    for run, removed in found:
        if run.active:
            what = f"left alone: still running ({', '.join(run.active)})"
        else:
            what = "removed" if removed else "would be removed"
        print(f"{run.suffix.lstrip('-'):<28} {len(run.topics):>3} topics {len(run.groups):>3} groups  {what}")
    finished = sum(1 for run, _removed in found if not run.active)
    print(f"{'would remove' if args.dry_run else 'removed'} {finished} of {len(found)} runs at {settings.bootstrap_servers}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .serve import ServeError, ServeRequest, serve

    try:
        return serve(ServeRequest(Path(args.path), args.port, dashboard=args.dashboard), settings_from(args))
    except ServeError as exc:
        raise UserError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderlab", description="Event-driven order processing on Apache Kafka, for teaching.")
    parser.add_argument("--version", action="version", version=f"orderlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the clients do")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .broker.cli import add_broker_parser

    add_broker_parser(commands)

    demo = commands.add_parser("demo", help="run the whole pipeline headless and reconcile every order")
    add_connection_options(demo)
    demo.add_argument("--orders", type=positive(int, "--orders"), default=1000)
    demo.add_argument("--rate", type=positive(float, "--rate"), default=200.0, help="orders per second")
    demo.add_argument("--workers", type=positive(int, "--workers"), default=2, help="transactions workers")
    demo.add_argument("--decline-probability", type=probability, default=0.1)
    demo.add_argument("--timeout", type=positive(float, "--timeout"), default=None, help="seconds to wait for every order (default: orders/rate + 60)")
    demo.add_argument("--exactly-once", action="store_true", help="transactional processing, read_committed consumers")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--keep", action="store_true", help="keep the run's topics and groups (default: removed at the end)")
    demo.set_defaults(func=cmd_demo)

    run = commands.add_parser("run", help="run one role as a process until SIGTERM or Ctrl-C")
    add_connection_options(run)
    from .seed import SEED  # the default topology's roles, for --help; the configured one is read when it runs

    run.add_argument("role", help=f"a role of the topology ($ORDERLAB_TOPOLOGY; the seed's: {', '.join(SEED.role_names)})")
    run.add_argument("--workers", type=positive(int, "--workers"), default=1, help="consumers in this process (one thread each)")
    run.add_argument("--rate", type=positive(float, "--rate", allow_zero=True), default=None, help="orders per second (orders role; default $ORDERLAB_RATE or 10)")
    run.add_argument("--decline-probability", type=probability, default=0.1)
    run.add_argument("--latency-ms", type=positive(float, "--latency-ms", allow_zero=True), default=0.0, help="simulated payment latency")
    run.add_argument("--interval", type=positive(float, "--interval"), default=5.0, help="seconds between counter log lines")
    run.add_argument("--exactly-once", action="store_true")
    run.add_argument("--instance", metavar="NAME", default=None,
                     help="this process's name in its transactional ids (exactly-once); default HOST-PID, unique per process")
    run.set_defaults(func=cmd_run)

    place = commands.add_parser("place", help="place one order by hand (the CLI frontend)")
    add_connection_options(place)
    place.add_argument("--email", required=True, help="customer e-mail (at example.com, .org or .net)")
    place.add_argument("--customer-id", default="cli-customer")
    place.add_argument("--currency", default="EUR")
    place.add_argument("item", nargs="+", help="SKUxQUANTITY, e.g. KB-001x2 MS-002")
    place.set_defaults(func=cmd_place)

    topics = commands.add_parser("topics", help="create the pipeline's topics (idempotent)")
    add_connection_options(topics)
    topics.add_argument("--suffix", default=None, help="topic name suffix (default: $ORDERLAB_TOPIC_SUFFIX or none)")
    topics.set_defaults(func=cmd_topics)

    cleaner = commands.add_parser("clean", help="remove the topics, groups and lesson ledgers finished runs left behind")
    add_connection_options(cleaner)
    cleaner.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    cleaner.set_defaults(func=cmd_clean)

    lab = commands.add_parser("lab", help="JupyterLab on the lessons (or --dashboard: the control room in Voila)")
    add_connection_options(lab)
    lab.add_argument("path", nargs="?", default="notebooks", help="the lessons folder, or with --dashboard one notebook")
    lab.add_argument("--port", type=positive(int, "--port"), default=8888, help="HTTP port on 127.0.0.1 (default 8888)")
    lab.add_argument("--dashboard", action="store_true", help="serve the notebook PATH alone with Voila, no code")
    lab.set_defaults(func=cmd_lab)

    from .bench import add_parser as add_bench_parser
    from .chaos import add_parser as add_chaos_parser

    add_bench_parser(commands)
    add_chaos_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # its retries are noise to a student
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (BrokerUnavailable, UserError, EventError) as exc:
        print(f"orderlab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SettingsError as exc:
        print(f"orderlab: bad setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TopologyError as exc:
        print(f"orderlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("orderlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
