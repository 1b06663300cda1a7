"""The lessons' log buffer: the outage logger's info lines are kept with the warnings, and orderlab's own
lines are kept apart, so a flood of kafka-python's lines (every reconnect of every client) cannot push them out."""

from __future__ import annotations

import logging
import time

from orderlab.ui.logs import KEPT_AT_INFO, LogBuffer


def test_the_back_line_is_kept_and_a_flood_of_other_lines_does_not_push_out_orderlabs_own() -> None:
    buffer = LogBuffer(capacity=5)
    outage, kafka, other = logging.getLogger(KEPT_AT_INFO[0]), logging.getLogger("kafka.test.flood"), logging.getLogger("orderlab.test.info")
    levels = {logger: logger.level for logger in (outage, kafka, other)}
    for logger in levels:
        logger.addHandler(buffer)
        logger.setLevel(logging.INFO)
    try:
        started = time.time()
        outage.warning("email: lost the broker (no connection to any broker)")
        other.info("an info line of another orderlab logger")  # below the buffer's level: not kept
        for n in range(20):
            kafka.error("Connection failed: KafkaConnectionError: 111 ECONNREFUSED (%d)", n)
        outage.info("email: broker back after 12.3 s")
    finally:
        for logger, level in levels.items():
            logger.removeHandler(buffer)
            logger.setLevel(level)
    own = [line.split(": ", 1)[1] for line in buffer.since(started)]
    assert own == ["email: lost the broker (no connection to any broker)", "email: broker back after 12.3 s"]
    every = buffer.since(started, own_only=False)
    assert len(every) == 5 and sum("ECONNREFUSED" in line for line in every) == 4  # the last five, of every logger
    assert buffer.since(time.time() + 60) == []
    assert buffer.last(notable_only=True).endswith("broker back after 12.3 s")
