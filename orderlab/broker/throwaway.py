"""Run a command against a throw-away broker: ``python -m orderlab.broker.throwaway -- CMD ...``.

The broker gets a free port and a temporary data dir; the command sees it in
``KAFKA_BOOTSTRAP_SERVERS``; the broker is stopped and its data removed when
the command ends, also when it fails or is interrupted. ``make test`` uses it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import BrokerError
from .local import LocalBroker
from .procs import free_port


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m orderlab.broker.throwaway -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    data_dir = Path(tempfile.mkdtemp(prefix="orderlab-kafka-"))
    broker = LocalBroker(data_dir, port=free_port())
    try:
        try:
            broker.start()
        except BrokerError as exc:
            print(f"orderlab: {exc}", file=sys.stderr)
            return 1
        print(f"throw-away Kafka at {broker.bootstrap_servers} (data {data_dir})", file=sys.stderr, flush=True)
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        child = subprocess.Popen(args, env=env)
        # SIGTERM to us (a CI timeout) reaches the child, then the finally below stops the broker
        signal.signal(signal.SIGTERM, lambda *_: child.terminate())
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.wait()
            return 130
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
