"""The four roles, each a :class:`~orderlab.services.base.Service` in a thread."""

from .analytics import AnalyticsBackend
from .base import Counters, Service, ServiceError, ServiceState
from .consumer import ConsumerService
from .email import EmailNotifier
from .orders import OrdersBackend, Placed
from .transactions import PaymentControls, TransactionsBackend

__all__ = [
    "AnalyticsBackend", "ConsumerService", "Counters", "EmailNotifier", "OrdersBackend", "PaymentControls",
    "Placed", "Service", "ServiceError", "ServiceState", "TransactionsBackend",
]
