"""The one bounded wait the lessons, cluster helpers and classroom bench share."""

from __future__ import annotations

import pytest

from orderlab.broker.errors import BrokerError
from orderlab.polling import poll_until


def test_poll_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, "", "leader 2"])
    assert poll_until(lambda: next(answers), 5, "a leader", poll_s=0) == "leader 2"


def test_poll_until_names_what_did_not_happen_in_the_error_it_is_given() -> None:
    with pytest.raises(BrokerError, match=r"^a new leader did not happen within 0\.05 s$"):
        poll_until(lambda: False, 0.05, "a new leader", poll_s=0.01, error=BrokerError)
    with pytest.raises(TimeoutError):
        poll_until(lambda: None, 0.0, "anything", poll_s=0)
