"""orderlab.kafka_compat restores kafka-python 2.x's "a pending join still needs a rejoin" check."""

import importlib
import types

from kafka.coordinator.consumer import ConsumerCoordinator

import orderlab.clients  # noqa: F401 - importing the clients applies the fix
import orderlab.kafka_compat as compat


def test_patch_is_applied_once_even_after_a_reload():
    patched = ConsumerCoordinator.need_rejoin
    assert getattr(patched, "orderlab_fixed", False)
    importlib.reload(compat)
    compat.apply()
    assert ConsumerCoordinator.need_rejoin is patched


def test_a_join_in_flight_still_needs_a_rejoin():
    assert compat.needs_rejoin(False, types.SimpleNamespace(_join_task=None)) is False
    assert compat.needs_rejoin(False, types.SimpleNamespace(_join_task=object())) is True
    assert compat.needs_rejoin(True, types.SimpleNamespace(_join_task=None)) is True
