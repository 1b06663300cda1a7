"""Topologies: which roles a system has, and what each reads and writes.

A :class:`Topology` is the one place a system's roles are declared. Each
:class:`RoleSpec` names the role (the name the CLI, the logs, the lag map
and the lessons use), its class, the topics it reads (each with the record
type that decodes it), the topics it writes, its consumer group, whether it
scales by workers, and the resources it needs (:class:`Resource`). The Lab,
``orderlab run ROLE``, the lag map, the lesson helpers and the CLI read this
declaration; nothing else lists roles.

This module knows nothing of how roles run: it imports no service. The
declarations themselves live beside it (``orderlab.seed`` for the seed's
four roles) and are found by name (:func:`load_topology`), so a role module
may import this one without an import cycle.

Topic names here are the declared ones (``order_details``); a run's names add
``settings.topic_suffix`` (:meth:`RoleSpec.ports`, :meth:`Topology.topic_plan`).
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .events import RecordType
from .settings import Settings


class TopologyError(ValueError):
    """A topology, role or topic that does not exist or does not fit; the message says which exist."""


class Resource(enum.Enum):
    """What a role needs besides Kafka; the wiring makes each once and hands it over by keyword."""

    LEDGER = "ledger"  # the SQLite ledger that makes side effects idempotent
    SMTP = "smtp"  # an SMTP server (the configured one, else an embedded catcher)
    PAYMENT_CONTROLS = "controls"  # the decline probability and latency sliders


@dataclass(frozen=True)
class TopicSpec:
    """One topic of a topology. ``partitions`` None means ``settings.order_details_partitions``."""

    name: str
    partitions: int | None = None
    dead_letters: bool = True  # whether its readers send bad records to ``<topic>.dlq``

    def partition_count(self, settings: Settings) -> int:
        """How many partitions this topic has in a run of settings."""
        return settings.order_details_partitions if self.partitions is None else self.partitions


@dataclass(frozen=True)
class Read:
    """A topic a role reads, and the record type its records decode as."""

    topic: str
    record: RecordType


@dataclass(frozen=True)
class Ports:
    """A role's topics in one run: the names with the run's suffix, and how to decode each input.

    :meth:`decoder` and :meth:`output` refuse a topic the role does not
    declare: an unknown topic is an error, never a fallback decoder.
    """

    role: str
    group_id: str | None
    inputs: Mapping[str, RecordType]  # the run's topic name -> its record type
    outputs: Mapping[str, str]  # declared name -> the run's topic name

    @property
    def topics(self) -> tuple[str, ...]:
        """The run's names of the topics this role consumes."""
        return tuple(self.inputs)

    def decoder(self, topic: str) -> Callable[[bytes | None], Any]:
        """The decode function for records of the run's topic topic."""
        record = self.inputs.get(topic)
        if record is None:
            raise TopologyError(f"{self.role} reads no topic {topic!r}; it reads {', '.join(self.inputs) or 'none'}")
        return record.decode

    def output(self, name: str) -> str:
        """The run's name of the declared output topic name."""
        topic = self.outputs.get(name)
        if topic is None:
            raise TopologyError(f"{self.role} writes no topic {name!r}; it writes {', '.join(self.outputs) or 'none'}")
        return topic


@dataclass(frozen=True)
class RoleSpec:
    """One role of a topology (see the module docstring for what each field is for).

    ``cls`` is built by :class:`orderlab.wiring.Wiring` as
    ``cls(settings, spec, name=..., worker=..., <resource>=..., **options)``.
    ``scales``: several workers may share the role's group (threads in one
    process, or processes); a role whose state lives in one consumer's memory
    (analytics) or that paces one rate (the order source) does not.
    """

    name: str
    cls: type  # a Service subclass (not imported here: services import this module)
    reads: tuple[Read, ...] = ()
    writes: tuple[str, ...] = ()
    scales: bool = False
    needs: frozenset[Resource] = frozenset()
    summary: str = ""  # one line: what the role does
    outside_in: str = ""  # what it reads from outside Kafka (a generator, a form, HTTP)
    outside_out: str = ""  # what it writes outside Kafka (SMTP, charts)

    @property
    def consumes(self) -> bool:
        """Whether the role reads Kafka topics (and so has a consumer group); else it is a source."""
        return bool(self.reads)

    def group_id(self, settings: Settings) -> str | None:
        """The role's consumer group in a run of settings (None for a source)."""
        return settings.group_id(self.name) if self.consumes else None

    def ports(self, settings: Settings) -> Ports:
        """This role's topics with the run's suffix, and the record type of each input."""
        suffix = settings.topic_suffix
        return Ports(
            role=self.name,
            group_id=self.group_id(settings),
            inputs=MappingProxyType({read.topic + suffix: read.record for read in self.reads}),
            outputs=MappingProxyType({topic: topic + suffix for topic in self.writes}),
        )


@dataclass(frozen=True)
class Topology:
    """The roles of one system and the topics between them; checked when declared."""

    name: str
    topics: tuple[TopicSpec, ...]
    roles: tuple[RoleSpec, ...]

    def __post_init__(self) -> None:
        declared = [topic.name for topic in self.topics]
        names = [role.name for role in self.roles]
        for kind, listed in (("topic", declared), ("role", names)):
            repeated = sorted({name for name in listed if listed.count(name) > 1})
            if repeated:
                raise TopologyError(f"topology {self.name!r} declares the {kind}(s) {', '.join(repeated)} twice")
        for role in self.roles:
            unknown = [t for t in (*(read.topic for read in role.reads), *role.writes) if t not in declared]
            if unknown:
                raise TopologyError(
                    f"topology {self.name!r}: role {role.name!r} uses undeclared topic(s) {', '.join(unknown)}"
                )

    # -- looking up --------------------------------------------------------------
    @property
    def role_names(self) -> tuple[str, ...]:
        """Every role's name, in declaration order."""
        return tuple(role.name for role in self.roles)

    def role(self, name: str) -> RoleSpec:
        """The role called name (a clear error naming the roles there are)."""
        for role in self.roles:
            if role.name == name:
                return role
        raise TopologyError(f"unknown role {name!r} in topology {self.name!r}; choose one of {', '.join(self.role_names)}")

    def topic(self, name: str) -> TopicSpec:
        """The declared topic called name."""
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise TopologyError(f"unknown topic {name!r} in topology {self.name!r}")

    def consumers(self) -> tuple[RoleSpec, ...]:
        """The roles that read topics, in declaration order."""
        return tuple(role for role in self.roles if role.consumes)

    def sources(self) -> tuple[RoleSpec, ...]:
        """The roles that read no topic (order sources), in declaration order."""
        return tuple(role for role in self.roles if not role.consumes)

    # -- a run's names -------------------------------------------------------------
    def topic_plan(self, settings: Settings) -> dict[str, int]:
        """Every topic of this run with its partition count: the declared ones, then a
        one-partition dead-letter topic for each that a role reads."""
        plan = {topic.name + settings.topic_suffix: topic.partition_count(settings) for topic in self.topics}
        read = {read.topic for role in self.roles for read in role.reads}
        for topic in self.topics:
            if topic.dead_letters and topic.name in read:
                plan[settings.dlq_topic(topic.name + settings.topic_suffix)] = 1
        return plan

    def data_topics(self, settings: Settings) -> tuple[str, ...]:
        """This run's names of the declared topics (no dead-letter topics)."""
        return tuple(topic.name + settings.topic_suffix for topic in self.topics)

    def dead_letter_topics(self, settings: Settings) -> tuple[str, ...]:
        """This run's dead-letter topics."""
        return tuple(name for name in self.topic_plan(settings) if name.endswith(".dlq"))

    def lag_groups(self, settings: Settings) -> dict[str, tuple[str, ...]]:
        """``{group id: the run's topics it reads}`` for every consuming role: what the lag map measures."""
        return {str(role.group_id(settings)): role.ports(settings).topics for role in self.consumers()}

    # -- extending -------------------------------------------------------------------
    def with_role(self, role: RoleSpec, *, topics: tuple[TopicSpec, ...] = (), name: str | None = None) -> "Topology":
        """This topology plus one role (and any new topics it needs): how a system grows by one entry."""
        return replace(self, name=name or self.name, topics=self.topics + topics, roles=self.roles + (role,))


# Where each named topology is declared: "module:attribute", imported on first use.
TOPOLOGIES: Mapping[str, str] = MappingProxyType({"seed": "orderlab.seed:SEED"})


def load_topology(name: str) -> Topology:
    """The topology called ``name`` (``seed``), or one given as ``package.module:ATTRIBUTE``."""
    target = TOPOLOGIES.get(name, name)
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise TopologyError(
            f"unknown topology {name!r}: choose one of {', '.join(TOPOLOGIES)}, or give module:ATTRIBUTE (ORDERLAB_TOPOLOGY)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TopologyError(f"topology {name!r}: cannot import {module_name} ({exc}); check ORDERLAB_TOPOLOGY") from None
    topology = getattr(module, attribute, None)
    if not isinstance(topology, Topology):
        raise TopologyError(f"topology {name!r}: {module_name} has no Topology called {attribute} (ORDERLAB_TOPOLOGY)")
    return topology
