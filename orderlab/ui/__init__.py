"""The notebook user interface over a :class:`~orderlab.lab.Lab`: the control
room (sliders, buttons, live charts), the order form and display tables.

Arrows go one way: ui → lab. Nothing here makes a Kafka client.
"""

from .chartdata import DashboardData, History, Sample, dashboard_data, measured_rate
from .charts import analytics_figure, dashboard_figure, dashboard_png, figure_image, to_png
from .controls import ControlRoom
from .forms import FormError, OrderForm, order_payload
from .logs import capture_logs
from .mode import TEST_MODE_VARIABLE, in_test_mode, pick
from .refresher import Refresher

__all__ = [
    "ControlRoom", "DashboardData", "FormError", "History", "OrderForm", "Refresher", "Sample", "TEST_MODE_VARIABLE",
    "analytics_figure", "capture_logs", "dashboard_data", "dashboard_figure", "dashboard_png", "figure_image", "in_test_mode",
    "measured_rate", "order_payload", "pick", "to_png",
]
