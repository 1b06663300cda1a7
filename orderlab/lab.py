"""The Lab: a topology's roles in one process, for notebooks, the demo and the bench.

It only orchestrates. The roles come from the topology (the seed's four by
default) and are built by a :class:`~orderlab.wiring.Wiring`, which also makes
what they share (the ledger, an SMTP catcher when no server is configured);
each role runs in a :class:`~orderlab.pool.WorkerPool` (the transactions
pool grows and shrinks with the workers slider); the knobs (order rate,
decline probability, payment latency, workers) change while everything runs;
:meth:`Lab.snapshot` reads every counter and the consumer lag.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import threading
from typing import Any

from kafka import KafkaProducer

from . import collector
from . import topics as topic_admin
from .clients import check_broker, make_producer, make_reply_producer
from .lag import LagMeter
from .ledger import Ledger
from .mail import MailCatcher
from .pool import WorkerPool
from .services import PaymentControls, stop_all
from .settings import Settings
from .snapshot import LabSnapshot
from .topology import Topology, load_topology
from .watching import LabWatching
from .wiring import Wiring


class LabState(enum.Enum):
    """Where a Lab is: NEW, STARTING, RUNNING, STOPPING, STOPPED (a stopped lab may start again)."""
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Lab(LabWatching):
    """A topology's roles in one process. ``with Lab(...) as lab:`` starts and stops them.

    Arguments: ``settings`` (default: from the environment); ``rate``, the
    order source's rate once started; ``workers``, how many workers the
    ``scaled_role`` (transactions) starts with; ``decline_probability`` and
    ``payment_latency_ms``, the payment knobs; ``limit``, stop generating
    after that many orders; ``ledger``, one to use (else one from
    ``settings.db_path``, closed with the Lab); ``consumer_config``, extra
    kafka-python settings for every consumer role (a short
    ``session_timeout_ms``, so a crashed worker's partitions move on
    quickly); ``scaled_consumer_config``, more for the scaled role's workers
    only (the other roles keep their full batches: the e-mail role, with at
    most 100 records a poll, fell behind at 1500 orders/s in a classroom
    run; the transactions workers size their batches to the payment latency
    themselves, see ``TransactionsBackend.records_per_poll``); ``topology``,
    the roles to run (default: ``settings.topology``).
    A stopped Lab can be started again.
    """

    def __init__(self, settings: Settings | None = None, *, rate: float = 0.0, workers: int = 2,
                 decline_probability: float = 0.1, payment_latency_ms: float = 0.0, limit: int | None = None,
                 ledger: Ledger | None = None, consumer_config: dict[str, Any] | None = None,
                 topology: Topology | None = None, scaled_role: str = "transactions",
                 scaled_consumer_config: dict[str, Any] | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.topology = topology or load_topology(self.settings.topology)
        self.consumer_config = dict(consumer_config or {})
        self.scaled_consumer_config = {**self.consumer_config, **(scaled_consumer_config or {})}
        self.controls = PaymentControls(decline_probability, payment_latency_ms)
        self.scaled_role = scaled_role
        self._initial_rate = rate
        self._initial_workers = workers
        self._limit = limit
        self._given_ledger = ledger
        self.ledger = ledger
        self.catcher: MailCatcher | None = None
        self.producer: KafkaProducer | None = None  # the order sources' (it lingers, to batch orders)
        self.reply_producer: KafkaProducer | None = None  # the consumer roles' (see clients.REPLY_LINGER_MS)
        self.pools: dict[str, WorkerPool] = {}
        self._lag = LagMeter(self.settings)
        self._lock = threading.RLock()
        self._state = LabState.NEW
        self._running_stack: contextlib.ExitStack | None = None

    # -- lifecycle ---------------------------------------------------------------
    @property
    def state(self) -> LabState:
        """The lab's state now."""
        return self._state

    @property
    def running(self) -> bool:
        """Whether every role is running (knobs may be turned)."""
        return self._state is LabState.RUNNING

    def start(self) -> "Lab":
        """Check the broker, create topics, start every role (consumers first, the order sources last). Idempotent.

        A failed start closes, in reverse order, exactly what had started, and raises.
        """
        with self._lock:
            if self._state in (LabState.RUNNING, LabState.STARTING):
                return self
            self._state = LabState.STARTING
            with contextlib.ExitStack() as started:
                try:
                    self._start_everything(started)
                except BaseException:
                    self._state = LabState.STOPPED
                    raise  # leaving the ExitStack closes what started, in reverse
                self._running_stack = started.pop_all()
            self._state = LabState.RUNNING
            # Everything alive now (modules, clients, the roles) lives as long as the
            # lab: frozen out of the cyclic GC's collections, which are made rarer
            # too; each stops every role (see orderlab.collector).
            collector.relax()
            if self.orders is not None:
                self.orders.set_rate(self._initial_rate)
            return self

    def _start_everything(self, started: contextlib.ExitStack) -> None:
        check_broker(self.settings)
        topic_admin.ensure_topics(self.settings)
        self.producer = make_producer(self.settings)
        started.callback(self._close_producers)
        self.reply_producer = make_reply_producer(self.settings)
        wiring = Wiring(self.settings, self.topology, ledger=self._given_ledger, controls=self.controls,
                        producer=self.reply_producer, consumer_config=self.consumer_config)
        started.callback(wiring.close)
        self.pools = {}
        started.callback(self._stop_roles, 10.0)
        for spec in self.topology.roles:
            wiring.prepare(spec.name)
        self.ledger, self.catcher = wiring.made_or_given_ledger, wiring.catcher
        for spec in (*self.topology.consumers(), *self.topology.sources()):
            scaled = spec.name == self.scaled_role
            options: dict[str, Any] = {}
            if not spec.consumes:
                options = {"rate": 0, "limit": self._limit, "producer": self.producer, "keep_ids": True}
            elif scaled:
                options = {"consumer_config": self.scaled_consumer_config}
            self.pools[spec.name] = WorkerPool(spec.name, functools.partial(self._build, wiring, spec.name, scaled, options))
            self.pools[spec.name].scale(self._initial_workers if scaled else 1)

    @staticmethod
    def _build(wiring: Wiring, role: str, scaled: bool, options: dict[str, Any], slot: int) -> Any:
        """A worker for ``slot``: the scaled role's are named by slot (transactions-0), the others by role."""
        return wiring.service(role, worker=slot, name=f"{role}-{slot}" if scaled else role, **options)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the order sources first, then every other role at once (within ``timeout``); close everything. Idempotent."""
        with self._lock:
            if self._state is not LabState.RUNNING:
                return
            self._state = LabState.STOPPING
            stack, self._running_stack = self._running_stack, None
            try:
                self._stop_roles(timeout)  # within this bound; the stack then closes the rest
                if stack is not None:
                    stack.close()
            finally:
                self._lag.close()
                collector.restore()
                self._state = LabState.STOPPED

    def _stop_roles(self, timeout: float) -> None:
        sources = [w for spec in self.topology.sources() if spec.name in self.pools for w in self.pools[spec.name].retire_all()]
        stop_all(sources, timeout)  # no new orders while the consumers drain
        stop_all([w for pool in self.pools.values() for w in pool.retire_all()], timeout)

    def _close_producers(self) -> None:
        for producer in filter(None, (self.producer, self.reply_producer)):
            producer.close(timeout=5)
        self.producer = self.reply_producer = None

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *_exc_info: Any) -> None:
        self.stop()

    # -- the roles ------------------------------------------------------------------
    def _pool(self, role: str) -> WorkerPool:
        """The pool of ``role`` in a running lab (a clear error otherwise: a knob turned too early)."""
        if not self.running:
            raise RuntimeError(f"the lab is {self._state.value}, not running: call lab.start() first")
        pool = self.pools.get(role)
        if pool is None:
            raise RuntimeError(f"this lab's topology {self.topology.name!r} has no role {role!r}")
        return pool

    # -- knobs --------------------------------------------------------------------
    def set_rate(self, orders_per_s: float) -> None:
        """Change the generator's rate (orders/s) while the lab runs."""
        self._pool("orders").workers[0].set_rate(orders_per_s)

    @property
    def rate(self) -> float:
        """The generator's rate now, or the one start() will set."""
        return self.orders.rate if self.orders is not None else self._initial_rate

    @property
    def worker_count(self) -> int:
        """Transactions workers running now, or the number ``start()`` will run."""
        return len(self.workers) if self.running else self._initial_workers

    def revenue_cents(self) -> int:
        """Revenue so far: the value of the orders the analytics role has seen confirmed (each once; declined ones earn nothing)."""
        return self.analytics.revenue_cents if self.analytics is not None else 0

    def generate(self, count: int, *, rate: float, timeout: float = 60.0) -> LabSnapshot:
        """Let the generator place ``count`` more orders at ``rate``/s, then return to the previous rate.

        Exact when the generator was idle (rate 0) before the call, which is how
        the lessons use it; waits (bounded) until the orders are placed, not settled.
        """
        with self._pool("orders").workers[0].burst(count, rate) as target:
            return self.wait_until(lambda s: s.placed >= target, timeout)

    def set_decline_probability(self, probability: float) -> None:
        """Change the share of declined payments, for every transactions worker at once."""
        self.controls.set_decline_probability(probability)

    def set_payment_latency_ms(self, latency_ms: float) -> None:
        """Change how long each simulated payment takes, for every worker at once."""
        self.controls.latency_ms = latency_ms

    def scale_transactions(self, count: int) -> int:
        """Run ``count`` transactions workers (one consumer each, one group); returns the count."""
        return self._pool(self.scaled_role).scale(count)

    def crash_worker(self, index: int = 0, *, after_send: bool = True, min_records: int = 1) -> Any:
        """Fault injection: make worker ``index`` die at its next batch (of at least ``min_records``) without committing."""
        return self._pool(self.scaled_role).crash(index, after_send=after_send, min_records=min_records)

    def replace_dead_workers(self) -> int:
        """Start a new worker (same slot) for each one that crashed; returns how many."""
        return self._pool(self.scaled_role).replace_dead()

    def place(self, payload: dict[str, Any]) -> Any:
        """Place one order from a dict (a form); invalid ones go to the DLQ with the reason."""
        return self._pool("orders").workers[0].submit(payload)

    def reset(self) -> None:
        """Stop, delete this run's topics, so the next ``start()`` begins empty (for the next class)."""
        self.stop()
        topic_admin.delete_topics(self.settings)
