"""The one exception the broker helpers raise."""

from __future__ import annotations


class BrokerError(Exception):
    """A problem with the local Kafka broker, worded for the person running it.

    The message is complete on its own (what went wrong and what to do), so
    callers such as the CLI print ``str(err)`` and never a traceback.
    """
