"""While roles run, the cyclic GC collects rarely; the thresholds found before come back after the last user."""

import gc

from orderlab import collector


def test_relax_and_restore_nest_and_give_back_the_thresholds_found():
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    try:
        collector.relax()
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, collector.MIDDLE_THRESHOLD, collector.OLD_THRESHOLD)
        assert gc.get_freeze_count() >= frozen_before
        with collector.roles_running():  # a second Lab in the same process
            assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD, "the first user still runs"
        collector.restore()
        assert gc.get_threshold() == before
        collector.restore()  # one too many: nothing to undo
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)


def test_cycles_are_still_collected_while_relaxed():
    import weakref

    class Node:
        pass

    with collector.roles_running():
        node = Node()
        node.me = node  # a cycle: reference counting alone never frees it
        alive = weakref.ref(node)
        del node
        gc.collect()
        assert alive() is None


def test_as_a_decorator_each_call_runs_relaxed():
    before = gc.get_threshold()

    @collector.roles_running()
    def young_threshold() -> int:
        return gc.get_threshold()[0]

    assert young_threshold() == young_threshold() == collector.YOUNG_THRESHOLD
    assert gc.get_threshold() == before
