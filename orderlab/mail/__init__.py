"""E-mail: composing the confirmation, sending it over SMTP, and catching it.

The package is split along its process boundary, one job per module:

- :mod:`~orderlab.mail.compose`: the confirmation message (pure);
- :mod:`~orderlab.mail.sender`: :class:`MailSender`, the contract of a sender;
- :mod:`~orderlab.mail.smtp`: :class:`SmtpSender`, the SMTP client, and back-off;
- :mod:`~orderlab.mail.relay`: :class:`SmtpRelay`, an SmtpSender in a child
  process, whose program is :mod:`~orderlab.mail.relay_child`;
- :mod:`~orderlab.mail.catcher`: :class:`MailCatcher`, the embedded SMTP
  server's parent side, whose program is :mod:`~orderlab.mail.catcher_server`
  (aiosmtpd); :mod:`~orderlab.mail.caught`: :class:`CaughtMail`, what it caught.

Only the parent sides are imported here: the two child programs are started
with ``python -m`` and are never loaded into the pipeline's process, so
importing this package does not load aiosmtpd.
"""

from .catcher import MailCatcher
from .caught import CaughtMail
from .compose import (
    CREATED_AT_HEADER,
    Confirmation,
    IDEMPOTENCY_HEADER,
    ORDER_ID_HEADER,
    OutgoingMail,
    compose_confirmation,
    money,
    render_confirmation,
)
from .relay import SmtpRelay
from .sender import Handover, MailSender
from .smtp import SmtpSender, wait_seconds

__all__ = [
    "CREATED_AT_HEADER",
    "CaughtMail",
    "Confirmation",
    "Handover",
    "IDEMPOTENCY_HEADER",
    "MailCatcher",
    "MailSender",
    "ORDER_ID_HEADER",
    "OutgoingMail",
    "SmtpRelay",
    "SmtpSender",
    "compose_confirmation",
    "money",
    "render_confirmation",
    "wait_seconds",
]
