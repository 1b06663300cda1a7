"""What every ``orderlab`` subcommand shares: exit codes, user errors, the
connection option and the number options.

``orderlab.cli``, ``orderlab.bench``, ``orderlab.chaos`` and
``orderlab.broker.cli`` all import from here, and this module imports none of
them, so the subcommands never reach back into the top-level command.

Each number option turns a bad value into one argparse line naming the
option (``--orders must be > 0, got -5``), never a traceback.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from .settings import Settings

EXIT_FAILED = 1  # the command ran and failed (a lost order, a refused order, no broker)
EXIT_USAGE = 2  # bad arguments or settings: nothing was done


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


# -- the connection ----------------------------------------------------------------

def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap-servers``, which :func:`settings_from` reads."""
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                        help="Kafka address (default: $KAFKA_BOOTSTRAP_SERVERS or localhost:9092)")


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The environment's settings, with ``--bootstrap-servers`` and ``--exactly-once`` (where given) on top."""
    values = dict(overrides)
    if getattr(args, "bootstrap_servers", None):
        values["bootstrap_servers"] = args.bootstrap_servers
    if getattr(args, "exactly_once", False):
        values["exactly_once"] = True
    return Settings.from_env(**values)


# -- numbers -----------------------------------------------------------------------

def positive(
    kind: Callable[[str], Any], name: str, *, allow_zero: bool = False, what: str = "a number", finite_hint: bool = True,
) -> Callable[[str], Any]:
    """An argparse ``type`` for a number > 0 (or >= 0 with ``allow_zero``).

    ``what`` names the expected value in the not-a-number message. With
    ``finite_hint`` infinity and NaN are "not a finite number"; without it
    they are simply out of range (``orderlab chaos --rate inf``: "must be > 0").
    """
    bound = ">= 0" if allow_zero else "> 0"

    def parse(text: str) -> Any:
        """Parse one value, or raise argparse's one-line error."""
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {text!r}") from None
        finite = math.isfinite(value)
        if not finite and finite_hint:
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}")
        if not finite or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, got {text}")
        return value

    return parse


def at_least(name: str, minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number >= ``minimum`` (a count of orders)."""

    def parse(text: str) -> int:
        """Parse one value, or raise argparse's one-line error."""
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def probability(text: str) -> float:
    """An argparse ``type`` for a probability, 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"probability must be a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"probability must be between 0 and 1, got {text}")
    return value


def tcp_port(text: str) -> int:
    """An argparse ``type`` for a TCP port, 1 to 65535."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)
