"""Wiring: building a topology's roles and the resources they share.

One :class:`Wiring` per run (a Lab, or an ``orderlab run`` process) makes
each resource a role declares it needs (:class:`~orderlab.topology.Resource`)
once, the first time a role needs it, and hands it to every role that
needs it: one ledger, one SMTP endpoint (the configured server, or else an
embedded catcher: the fallback is written here only), one set of payment
controls. :meth:`Wiring.close` closes what it made, in reverse order, and
nothing it was given.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Mapping

from kafka import KafkaProducer

from .ledger import Ledger
from .mail import MailCatcher
from .services import PaymentControls, Service, SmtpEndpoint
from .settings import Settings
from .topology import Resource, RoleSpec, Topology, load_topology

log = logging.getLogger(__name__)


class Wiring:
    """Builds services for the roles of ``topology`` (default: the one ``settings`` names).

    Arguments: ``ledger``, ``controls``: resources to use instead of making
    them; ``producer``: a producer every consumer role shares (else each
    makes its own); ``consumer_config``: extra kafka-python settings for
    every consumer role; ``instance``: this process's name among several
    (process mode); ``catcher_port``: where an embedded SMTP catcher listens
    when no SMTP server is configured (0: a free port).
    """

    def __init__(self, settings: Settings, topology: Topology | None = None, *, ledger: Ledger | None = None,
                 controls: PaymentControls | None = None, producer: KafkaProducer | None = None,
                 consumer_config: Mapping[str, Any] | None = None, instance: str | None = None,
                 catcher_port: int = 0) -> None:
        self.settings = settings
        self.topology = topology or load_topology(settings.topology)
        self.controls = controls or PaymentControls()
        self.producer = producer
        self.consumer_config = dict(consumer_config or {})
        self.instance = instance
        self.catcher_port = catcher_port
        self.catcher: MailCatcher | None = None
        self._ledger = ledger
        self._smtp: SmtpEndpoint | None = None
        self._made = contextlib.ExitStack()  # what this wiring made, closed in reverse

    # -- resources -------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        """The one ledger of this run (made from settings.db_path on first need, unless given)."""
        if self._ledger is None:
            self._ledger = Ledger.from_settings(self.settings)
            self._made.callback(self._ledger.close)
        return self._ledger

    @property
    def made_or_given_ledger(self) -> Ledger | None:
        """The ledger, if one was given or a role needed it so far (else None: no ledger is made for asking)."""
        return self._ledger

    @property
    def smtp(self) -> SmtpEndpoint:
        """The configured SMTP server, else an embedded catcher started now (once)."""
        if self._smtp is None:
            if self.settings.smtp_host:
                self._smtp = SmtpEndpoint(self.settings.smtp_host, self.settings.smtp_port)
            else:
                self.catcher = MailCatcher(port=self.catcher_port).start()
                self._made.callback(self.catcher.stop)
                self._smtp = SmtpEndpoint(self.catcher.host, self.catcher.port)
                log.info("no ORDERLAB_SMTP_HOST: catching e-mail on %s:%s", self.catcher.host, self.catcher.port)
        return self._smtp

    def resource(self, need: Resource) -> Any:
        """The resource behind need, made on first use."""
        if need is Resource.LEDGER:
            return self.ledger
        if need is Resource.SMTP:
            return self.smtp
        if need is Resource.PAYMENT_CONTROLS:
            return self.controls
        raise ValueError(f"no resource {need!r}")

    def prepare(self, role: str) -> None:
        """Make the resources ``role`` needs now (a catcher, the ledger), before any of its workers start."""
        for need in sorted(self.topology.role(role).needs, key=lambda need: need.value):
            self.resource(need)

    # -- services ----------------------------------------------------------------------
    def service(self, role: str, *, worker: int = 0, name: str | None = None, **options: Any) -> Service:
        """A new, not yet started, service for ``role`` (worker slot ``worker``).

        ``options`` go to the role's class (``rate=`` for the order source,
        ``keep=`` for analytics...) and win over what the wiring would pass.
        """
        spec = self.topology.role(role)
        arguments: dict[str, Any] = {need.value: self.resource(need) for need in spec.needs}
        arguments.update(worker=worker, instance=self.instance)
        if name is not None:
            arguments["name"] = name
        if spec.consumes:
            arguments.update(producer=self.producer, consumer_config=self.consumer_config)
        arguments.update(options)
        return spec.cls(self.settings, spec, **arguments)

    def spec(self, role: str) -> RoleSpec:
        """The declaration of role in this wiring's topology."""
        return self.topology.role(role)

    def close(self) -> None:
        """Close what this wiring made (the catcher, the ledger), in reverse order. Idempotent."""
        self._made.close()
        self._smtp = None
        self.catcher = None
