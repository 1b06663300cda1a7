"""orderlab: an order-processing system of four Kafka services, for teaching.

The usual way in is the :class:`~orderlab.lab.Lab`::

    from orderlab import Lab
    with Lab(rate=50) as lab:
        lab.wait_for_orders(100, timeout=30)
        print(lab.snapshot())
"""

__version__ = "0.1.0"

from .events import ConfirmedOrder, DeclinedOrder, EventError, LineItem, Order  # noqa: E402
from .settings import Settings, SettingsError  # noqa: E402

__all__ = ["ConfirmedOrder", "DeclinedOrder", "EventError", "Lab", "LineItem", "Order", "Settings", "SettingsError", "__version__"]


def __getattr__(name: str):  # the Lab pulls in Kafka and pandas: load it on first use
    if name == "Lab":
        from .lab import Lab

        return Lab
    raise AttributeError(name)
