"""The seed's four roles, each a :class:`~orderlab.services.base.Service` in a thread.

Which roles a system has, and what each reads and writes, is declared in a
topology (:mod:`orderlab.seed`), not here.
"""

from .analytics import AnalyticsBackend
from .base import Counters, Service, ServiceError, ServiceState, stop_all
from .consumer import ConsumerService
from .email import EmailNotifier, SmtpEndpoint
from .orders import OrdersBackend, Placed
from .transactions import PaymentControls, TransactionsBackend

__all__ = [
    "AnalyticsBackend", "ConsumerService", "Counters", "EmailNotifier", "OrdersBackend", "PaymentControls",
    "Placed", "Service", "ServiceError", "ServiceState", "SmtpEndpoint", "TransactionsBackend", "stop_all",
]
