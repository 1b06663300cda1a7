"""The replication lesson's pure parts: the partitions table and the stall arithmetic (no Kafka here)."""

from __future__ import annotations

import pytest

from orderlab.broker.metadata import PartitionState
from orderlab.replication import PartitionSender, acks_summary, longest_stall, partitions_frame


def test_partitions_frame_has_one_row_per_partition() -> None:
    states = [PartitionState("t", 0, 2, (2, 3, 1), (1, 2, 3)), PartitionState("t", 1, None, (3, 1, 2), ())]
    frame = partitions_frame(states)
    assert list(frame["partition"]) == [0, 1]
    assert frame.loc[0, "leader"] == 2 and frame["leader"].isna().tolist() == [False, True]
    assert frame["under_replicated"].tolist() == [False, True]
    assert frame.loc[0, "isr"] == (1, 2, 3)
    assert partitions_frame([]).columns.tolist()[:3] == ["topic", "partition", "leader"]


def test_longest_stall_starts_at_the_last_acknowledgement_before_the_kill() -> None:
    acks = [0.0, 0.1, 0.2, 3.5, 3.51, 3.6]
    assert longest_stall(acks, since=0.25) == pytest.approx(3.3)
    assert longest_stall(acks, since=10.0) == 0.0  # nothing acknowledged after
    assert longest_stall([5.0, 5.2], since=1.0) == pytest.approx(4.0)  # nothing before: from the kill


def test_sender_refuses_settings_the_lesson_does_not_compare() -> None:
    with pytest.raises(ValueError, match="acks must be one of 1, all"):
        PartitionSender("127.0.0.1:1", "t", 0, acks="0", rate=10, run_id="x")
    with pytest.raises(ValueError, match="rate must be > 0"):
        PartitionSender("127.0.0.1:1", "t", 0, acks="all", rate=0, run_id="x")


def test_acks_summary_adds_up_the_kills() -> None:
    import pandas as pd

    runs = pd.DataFrame(
        [
            {"acks": "1", "acknowledged": 100, "missing": 3, "killed_controller": True, "stall_s": 3.0, "election_s": 3.1, "rejoin_s": 20.0},
            {"acks": "all", "acknowledged": 90, "missing": 0, "killed_controller": False, "stall_s": 3.2, "election_s": 3.0, "rejoin_s": 21.0},
            {"acks": "1", "acknowledged": 110, "missing": 0, "killed_controller": False, "stall_s": 2.0, "election_s": 2.9, "rejoin_s": 18.0},
        ]
    )
    summary = acks_summary(runs)
    assert summary.loc["1"].to_dict() == {
        "kills": 2, "acknowledged": 210, "missing": 3, "kills_with_loss": 1, "most_missing_in_one_kill": 3, "controller_kills": 1,
        "median_stall_s": 2.5, "median_election_s": 3.0, "median_rejoin_s": 19.0,
    }  # fmt: skip
    assert summary.loc["all", "missing"] == 0 and summary.loc["all", "kills_with_loss"] == 0
    assert list(summary.index) == ["1", "all"]
