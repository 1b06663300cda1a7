"""Runs clean up after themselves: ``orderlab demo`` removes its topics unless
``--keep``, and ``orderlab clean`` removes what finished runs left behind,
never a run that is still active."""

from __future__ import annotations

import pytest

from orderlab.cleanup import clean, find_runs, remove_run
from orderlab.cli import main
from orderlab.clients import make_admin, make_consumer
from orderlab.demo import run_demo
from orderlab.settings import Settings, new_run_suffix
from orderlab.topics import ensure_topics
from waiting import wait_for

pytestmark = pytest.mark.integration


def run_topics(settings: Settings) -> set[str]:
    admin = make_admin(settings)
    try:
        return {topic for topic in admin.list_topics() if topic.removesuffix(".dlq").endswith(settings.topic_suffix)}
    finally:
        admin.close()


def test_the_demo_removes_its_topics_unless_asked_to_keep_them(kafka_bootstrap: str, tmp_path) -> None:  # noqa: ANN001
    base = Settings(bootstrap_servers=kafka_bootstrap, db_url=f"sqlite:///{tmp_path / 'l.db'}", order_details_partitions=2)
    removed = run_demo(20, 200, settings=base)
    assert removed.ok and removed.settings["topics_removed"] == 6
    assert wait_for(lambda: not run_topics(base.with_(topic_suffix=removed.settings["topic_suffix"])), 30)
    kept = run_demo(20, 200, settings=base, keep=True)
    kept_settings = base.with_(topic_suffix=kept.settings["topic_suffix"])
    assert kept.ok and kept.settings["topics_removed"] == 0 and len(run_topics(kept_settings)) == 6
    assert remove_run(kept_settings) == 6


def test_clean_removes_finished_runs_and_leaves_a_running_one(kafka_bootstrap: str, capsys) -> None:  # noqa: ANN001
    finished = Settings(bootstrap_servers=kafka_bootstrap, topic_suffix=new_run_suffix("cleantest"), order_details_partitions=1)
    running = finished.with_(topic_suffix=new_run_suffix("cleantest"))
    ensure_topics(finished)
    ensure_topics(running)
    member = make_consumer(running, running.group_id("transactions"), running.order_details_topic)
    try:
        def joined() -> bool:
            member.poll(timeout_ms=100)  # a member joins its group over several polls
            return any(r.suffix == running.topic_suffix and r.active for r in _runs(kafka_bootstrap))

        assert wait_for(joined, 30)
        assert main(["clean", "--dry-run", "--bootstrap-servers", kafka_bootstrap]) == 0
        listed = capsys.readouterr().out
        assert f"{finished.topic_suffix.lstrip('-')}" in listed and "would be removed" in listed
        assert run_topics(finished), "a dry run removes nothing"
        results = {run.suffix: removed for run, removed in clean(finished)}
        assert results[finished.topic_suffix] is True and results[running.topic_suffix] is False
        assert wait_for(lambda: not run_topics(finished), 30)
        assert len(run_topics(running)) == 6
    finally:
        member.close()
        remove_run(running)


def _runs(bootstrap: str) -> list:
    admin = make_admin(Settings(bootstrap_servers=bootstrap))
    try:
        return find_runs(admin)
    finally:
        admin.close()
