"""The hard kills: SIGKILL, never SIGTERM, of a broker JVM, a role's process or a cluster node mid-flow.

Each function runs against a started :class:`~orderlab.lab.Lab` like the
scenarios of :mod:`.scenarios` (the runner settles and reconciles after
it). A role that is killed runs as ``orderlab run ROLE`` in a process of its
own (:mod:`.processes`), outside the lab, and is started again on the same
topics, groups and ledger after the kill. ``demo_kill`` has no lab: see
:func:`orderlab.chaos.runner.run_demo_kill`.
"""

from __future__ import annotations

import time

from ..clients import PRODUCER_ACKS
from ..services.email import RESEND_WINDOW
from ..services.faults import HOLDING
from .processes import ChildProcess, role_process
from .scenarios import CRASH_MIN_RECORDS, FAULT_WAIT_S, Run, place_while_broker_down

# email_kill: the catcher takes this long to accept each message, so a batch
# is in flight at the kill (SMTP_CONNECTIONS = 16: about 320 mails a second).
EMAIL_REPLY_DELAY_S = 0.05
ROLE_START_WAIT_S = 60.0  # a role process: the interpreter, the imports, its group join (on a busy 2-core machine)


def broker_kill(run: Run) -> None:
    """The broker JVM is SIGKILLed with orders flowing and started again on the same data and port."""
    broker = run.broker
    if broker is None:
        raise RuntimeError("broker_kill needs a private LocalBroker it may kill")
    _warm_up(run)
    before = run.placed
    run.flow()
    killed_at = time.monotonic()
    broker.kill()
    run.say(f"broker SIGKILLed after {before} orders")
    during, seconds_down = place_while_broker_down(run, before, killed_at)
    run.notes.append(f"broker JVM SIGKILLed after {before} orders, down {seconds_down:.1f} s while {during} more were "
                     "placed, then started again on the same data and port")


def transactions_kill(run: Run) -> None:
    """``orderlab run transactions`` is SIGKILLed holding a batch it charged and did not commit, then started again.

    Orders pile up before the process starts, so its first poll is a real
    batch; ``ORDERLAB_FAULT_HOLD_BEFORE_COMMIT`` makes it wait, charges in
    the ledger and outcomes acknowledged, offsets not committed, until the
    kill: the kill lands between charging and committing every time.
    """
    ledger = run.lab.ledger
    if ledger is None:
        raise RuntimeError("transactions_kill needs a started lab")
    run.flow()
    run.until_placed(run.orders // 3)
    run.flow(False)
    held = _start(run, role_process("transactions", run.settings, hold_before_commit=CRASH_MIN_RECORDS))
    if not held.wait_for_line(HOLDING, ROLE_START_WAIT_S):
        run.problems.append(f"{held.label} never held a batch before committing: {held.tail()}")
        return
    charged = ledger.charge_count(run.lab.orders.placed_ids if run.lab.orders else None)
    held.kill_group()
    run.say(f"{held.label} SIGKILLed holding an uncommitted batch ({charged} orders charged so far)")
    _start(run, role_process("transactions", run.settings))
    run.flow()
    run.extra.update(charged_before_kill=charged, exit_signal=-held.process.returncode)
    run.notes.append(f"{held.label} (pid {held.pid}) SIGKILLed between charging and committing (fault hold at a batch of "
                     f">= {CRASH_MIN_RECORDS} records; {charged} orders charged by then), then started again on the same group and ledger")
    if charged == 0:
        run.problems.append("nothing was charged before the kill")


def email_kill(run: Run) -> None:
    """``orderlab run email`` (its SMTP helper with it) is SIGKILLed mid-batch and started again."""
    catcher, ledger = run.catcher, run.lab.ledger
    if catcher is None or ledger is None:
        raise RuntimeError("email_kill needs the scenario's own SMTP catcher and a started lab")
    mailer = _start(run, role_process("email", run.settings))
    run.flow()
    first = max(RESEND_WINDOW, run.orders // 4)
    run.until(lambda: catcher.count() >= first, f"the first {first} e-mails", ROLE_START_WAIT_S + run.orders / run.rate)
    waiting = run.lab.snapshot(with_lag=False).confirmed - catcher.count()
    caught = catcher.count()
    mailer.kill_group()
    recorded = ledger.email_count()
    run.say(f"{mailer.label} SIGKILLed after {caught} e-mails with {waiting} confirmations waiting")
    _start(run, role_process("email", run.settings))
    run.extra.update(emails_before_kill=caught, recorded_before_kill=recorded, confirmed_waiting_at_kill=waiting,
                     resend_window=RESEND_WINDOW)
    run.emailed_twice_allowed = RESEND_WINDOW
    run.notes.append(f"{mailer.label} (pid {mailer.pid}) and its SMTP helper SIGKILLed mid-batch after {caught} e-mails "
                     f"({recorded} in the ledger, {waiting} confirmations waiting), then started again; "
                     f"a kill may re-send at most RESEND_WINDOW = {RESEND_WINDOW} e-mails")
    if waiting <= 0:
        run.problems.append("no confirmation was waiting for its e-mail at the kill")


def leader_kill(run: Run) -> None:
    """The node leading ``order_details`` partition 0 is SIGKILLed under load (acks=all), then restarted."""
    cluster = run.cluster
    if cluster is None:
        raise RuntimeError("leader_kill needs a private three-node cluster")
    topic = run.settings.order_details_topic
    _warm_up(run)
    leader = cluster.node_of_leader(topic, 0)
    if leader is None:
        run.problems.append(f"{topic}[0] had no leader before the kill")
        return
    run.flow()  # under load: orders flow at the kill
    run.until_placed(run.placed + max(1, run.orders // 20))
    before = run.placed
    killed_at = time.monotonic()
    cluster.kill(leader)
    run.say(f"node {leader}, leader of {topic}[0], SIGKILLed after {before} orders")
    new_leader = None
    deadline = time.monotonic() + FAULT_WAIT_S
    while new_leader in (None, leader) and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            new_leader = cluster.node_of_leader(topic, 0, timeout=5)
        except Exception:  # noqa: BLE001 - the metadata of a cluster in election: ask again
            new_leader = None
    elected_s = time.monotonic() - killed_at
    run.until_placed(2 * run.orders // 3)
    during = run.placed - before
    cluster.restart(leader)
    run.extra.update(killed_node=leader, new_leader=new_leader, election_s=round(elected_s, 2),
                     placed_while_down=during, seconds_down=round(time.monotonic() - killed_at, 2), acks=PRODUCER_ACKS)
    run.notes.append(f"node {leader} (leader of {topic}[0]) SIGKILLed under load after {before} orders with acks={PRODUCER_ACKS}; "
                     f"node {new_leader} led after {elected_s:.1f} s, {during} orders placed meanwhile; node {leader} restarted")
    if new_leader in (None, leader):
        run.problems.append(f"no other node took over {topic}[0] within {FAULT_WAIT_S:.0f} s")
    if during == 0:
        run.problems.append(f"no order was placed while node {leader} was down")


def _start(run: Run, child: ChildProcess) -> ChildProcess:
    run.processes.append(child)
    return child


def _warm_up(run: Run) -> None:
    """A third of the orders, then the flow paused until every role did work (the pipeline in its steady state)."""
    run.flow()
    run.until_placed(run.orders // 3)
    run.flow(False)
    run.until(lambda: _settled_some(run), "the pipeline doing work before the kill")


def _settled_some(run: Run) -> bool:
    snapshot = run.lab.snapshot(with_lag=False)
    return snapshot.settled > 0 and snapshot.emails_sent > 0


KILLS = {"broker_kill": broker_kill, "email_kill": email_kill, "transactions_kill": transactions_kill, "leader_kill": leader_kill}
# the role each scenario runs as a process of its own (outside the lab), to kill it
OUT_OF_PROCESS = {"email_kill": "email", "transactions_kill": "transactions"}
