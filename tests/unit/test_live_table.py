"""The live table without Kafka: what it renders, that each frame is one reading, and that stop() freezes the last."""

from __future__ import annotations

import pandas as pd

from orderlab.ui.livetable import LiveTable, frame_html


def test_frame_html_joins_node_lists_and_shows_missing_values_as_a_dash() -> None:
    frame = pd.DataFrame({"leader": pd.array([2, None], dtype="Int64"), "isr": [(1, 2, 3), ()]}, index=[0, 1])
    text = frame_html(frame)
    assert "<td>1, 2, 3</td>" in text and text.count("<td>-</td>") == 2 and "<td>2</td>" in text
    assert "<script" not in frame_html(pd.DataFrame({"x": ["<script>"]}))  # values are escaped


def test_a_live_table_draws_at_start_refreshes_and_freezes_its_last_reading_at_stop() -> None:
    readings = iter(range(100))
    stopped: list[bool] = []

    def read() -> tuple[pd.DataFrame, str]:
        number = next(readings)
        return pd.DataFrame({"reading": [number]}), f"reading {number}"

    table = LiveTable(read, title="numbers", interval_s=60, on_stop=lambda: stopped.append(True))
    table.start()  # the thread's first reading, drawn before start() returns; the next is a minute away
    try:
        assert table.frames == 1 and "reading 0" in table.widget.value and "<td>0</td>" in table.widget.value
        table.refresher.refresh()
        assert "reading 1" in table.widget.value
    finally:
        last = table.stop()
    assert last is not None and last[1] == "reading 2" and "<td>2</td>" in table.widget.value
    assert table.stop() == last and stopped == [True]  # idempotent: no further reading, on_stop once
    assert not table.running


def test_a_failed_reading_keeps_the_last_table_and_says_why_on_one_line() -> None:
    calls = {"n": 0}

    def read() -> tuple[pd.DataFrame, str]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("node 2 is down\nand more detail")
        return pd.DataFrame({"leader": [2]}), "nodes up: 1, 2, 3"

    table = LiveTable(read, title="partitions", interval_s=60)
    table.start()
    table.refresher.refresh()
    table.stop()
    assert table.problem == "node 2 is down"
    assert "could not read just now: node 2 is down" in table.widget.value and "and more detail" not in table.widget.value
    assert "<td>2</td>" in table.widget.value and table.last is not None and table.last[1] == "nodes up: 1, 2, 3"


def test_a_saved_notebook_shows_the_placeholder_where_widgets_are_not_live() -> None:
    table = LiveTable(lambda: (pd.DataFrame(), ""), title="partitions", placeholder="partitions (run the notebook)")
    assert table._repr_mimebundle_()["text/plain"] == "partitions (run the notebook)"
