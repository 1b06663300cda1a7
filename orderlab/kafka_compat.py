"""Fixes and checks for kafka-python 3.0.12: the consumer group join (patched
on import), and what a transactional producer says about its transaction.

The join
--------

``KafkaConsumer.poll(timeout_ms=100)`` may time out while a rejoin is in
flight; the join is left running and the next poll is meant to pick up its
result. But when the rejoin was started by the group leader because its own
metadata changed (the usual case right after start-up: the first JoinGroup
goes out before the topic's metadata arrived, the leader assigns nothing and
rejoins when it does), the leader's new assignment clears the reason to
rejoin, ``need_rejoin()`` turns False, and nobody ever reads the join's
result: the member keeps heartbeats disabled, is removed from the group after
``session_timeout_ms`` and never rejoins. A role process then sits "idle"
forever, or keeps fetching partitions that were given to another member.

kafka-python 2.x avoided this by also checking for a pending join future
(dpkp/kafka-python#1695); this restores that check: a consumer still needs
to (re)join while a join it started has not been completed.

The transaction
---------------
When a send of a transactional producer fails with OUT_OF_ORDER_SEQUENCE_NUMBER,
UNKNOWN_PRODUCER_ID or INVALID_PRODUCER_EPOCH (a broker that restarted, or
that timed the transaction out), kafka-python 3.0.12 bumps the producer's
epoch on its own (KIP-360). The broker aborts the open transaction when it
grants the bump, and the client forgets it had one. If
``commit_transaction()`` was already waiting for that send, it then returns
as if the commit had succeeded: the client skips the EndTxn of a transaction
it believes empty. Nothing was committed, neither the output nor the
consumed offsets, yet the caller moves on past the batch. The Java client
instead fails the transaction and bumps the epoch only on abort.
:func:`transaction_epoch` lets a caller see that this happened, and
:func:`transaction_ended_by_client` that there is nothing left to abort.
The records of that transaction not sent yet stay in the producer's buffer
and go out, under the new epoch, in the next transaction: such a producer
is replaced, and :func:`discard` closes it without sending them.
"""

from __future__ import annotations

from typing import Any

from kafka.coordinator.consumer import ConsumerCoordinator
from kafka.errors import KafkaError
from kafka.producer.transaction_manager import TransactionState


def needs_rejoin(original_answer: bool, coordinator: Any) -> bool:
    """kafka-python's own answer, or a join this consumer started and nobody completed yet."""
    return original_answer or getattr(coordinator, "_join_task", None) is not None


def apply() -> None:
    """Patch ``ConsumerCoordinator.need_rejoin``; a second call (or a module reload) does nothing."""
    original = ConsumerCoordinator.need_rejoin
    if getattr(original, "orderlab_fixed", False):
        return

    def need_rejoin(self: ConsumerCoordinator) -> bool:
        return needs_rejoin(original(self), self)

    need_rejoin.orderlab_fixed = True  # type: ignore[attr-defined]
    ConsumerCoordinator.need_rejoin = need_rejoin  # type: ignore[method-assign]


apply()


def transaction_epoch(producer: Any) -> tuple[int, int] | None:
    """A transactional producer's (producer id, epoch); None for a producer that is not transactional.

    The same before ``begin_transaction()`` and after ``commit_transaction()``
    means the transaction really ended with the commit the producer sent; a
    different one means kafka-python bumped the epoch meanwhile, and the
    broker aborted the transaction.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or not manager.is_transactional():
        return None
    current = manager.producer_id_and_epoch
    return (current.producer_id, current.epoch)


def transaction_ended_by_client(producer: Any) -> bool:
    """Whether kafka-python has no transaction left to abort: it ended it on its own with an epoch bump.

    ``abort_transaction()`` in that state is an invalid transition, not a
    sign that another producer fenced this one.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        return False
    return manager._current_state in (TransactionState.READY, TransactionState.BUMPING_PRODUCER_EPOCH)  # noqa: SLF001


DISCARD_JOIN_S = 5.0


def discard(producer: Any) -> None:
    """Close a producer at once and drop the records it has not sent.

    ``close(timeout=0)`` alone first flushes with a zero timeout, which raises
    KafkaTimeoutError while records are pending and leaves the sender thread
    running with them; a forced close of the sender fails them instead.
    """
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(DISCARD_JOIN_S)
    try:
        producer.close(timeout=0)
    except KafkaError:  # closing a producer that is being dropped anyway
        pass
