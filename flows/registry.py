"""Node type registry: the ``NodeType`` base and discovery through the ``gorax.nodes`` entry point.

This module is light on purpose (pydantic only, no Prefect): the translator imports it to
validate graphs, the API imports it to serve the catalogue, the runtime imports it to run nodes.

A node type is one module in ``flows/nodes/``::

    class Condition(NodeType):
        type = "control.condition"
        version = 1
        display_name = "Condition"
        category = "control"
        description = "Route by a CEL expression."
        outputs = ("true", "false")
        expression_fields = ("expression",)

        class Config(NodeConfig):
            expression: str = Field(description="Bare CEL that yields a bool.")

        async def run(self, config: Config, ctx: NodeContext) -> Routed:
            ...

An entry point in the group ``gorax.nodes`` may name a ``NodeType`` subclass, an iterable of
them, or a module/package (every ``NodeType`` subclass defined in it and its submodules is
registered). Old versions of a type stay registered beside new ones.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, ClassVar, Iterable, Protocol

from pydantic import BaseModel, ConfigDict

ENTRY_POINT_GROUP = "gorax.nodes"


class NodeConfig(BaseModel):
    """Base of every node type's ``Config``: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class EmptyConfig(NodeConfig):
    """A node type without settings."""


@dataclass(frozen=True)
class Routed:
    """A node result that leaves through named output handles (``true``, a switch case, ...)."""

    output: Any
    handles: tuple[str, ...]


class NodeContext(Protocol):
    """What a node sees at run time (implemented by the runtime in ``flows/``)."""

    node_id: str
    tenant_id: str | None
    scope: dict[str, Any]

    async def credential(self, name: str) -> Any:
        """The unsealed credential Block ``name`` of the run's tenant (worker only)."""

    @property
    def logger(self) -> Any:  # a logging.Logger-like object whose output is masked
        ...


class NodeType:
    """Base class of node types. Subclasses set the class attributes and implement ``run``."""

    type: ClassVar[str]
    version: ClassVar[int] = 1
    display_name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str]
    #: Named output handles; empty means the main output only. Types whose handles depend on
    #: their config (switch cases, approval options) override :meth:`handles_for`.
    outputs: ClassVar[tuple[str, ...]] = ()
    #: Credential Block type slugs a ``credential`` field of the config accepts.
    credential_types: ClassVar[tuple[str, ...]] = ()
    #: Config fields (dotted paths) that hold bare CEL rather than ``{{ }}`` templates.
    #: ``cases.*`` matches every key of the map ``cases``; ``rules[*].when`` every item of a list.
    expression_fields: ClassVar[tuple[str, ...]] = ()
    #: Config fields that name a credential, besides ``credential`` and ``*_credential`` keys,
    #: which always do (e.g. ``("signature.secret",)``). Their values must be literal names.
    credential_fields: ClassVar[tuple[str, ...]] = ()
    #: Config fields kept exactly as written: never rendered as templates (e.g. text meant for
    #: another system's own templating). Embedded ``gorax/graph@1`` documents are always literal.
    literal_fields: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[builtins.type[NodeConfig]] = EmptyConfig  # `type` is the slug above

    @classmethod
    def handles_for(cls, config: dict[str, Any]) -> tuple[str, ...]:
        """Output handles this node offers with this (raw) config."""
        return cls.outputs

    @classmethod
    def is_trigger(cls) -> bool:
        return cls.category == "trigger"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry the editor renders from."""
        return {
            "type": cls.type,
            "version": cls.version,
            "display_name": cls.display_name,
            "category": cls.category,
            "description": cls.description,
            "outputs": list(cls.outputs),
            "credential_types": list(cls.credential_types),
            "expression_fields": list(cls.expression_fields),
            "credential_fields": list(cls.credential_fields),
            "config_schema": cls.Config.model_json_schema(),
        }

    async def run(self, config: Any, ctx: NodeContext) -> Any:
        raise NotImplementedError(f"node type {self.type} v{self.version} cannot run")


class RegistryError(Exception):
    """A node type plugin failed to load or declares something invalid."""


class NodeRegistry:
    """Every registered node type, by slug and version."""

    def __init__(self) -> None:
        self._types: dict[str, dict[int, type[NodeType]]] = {}

    def register(self, node_type: type[NodeType], *, source: str = "") -> None:
        for attr in ("type", "display_name", "category", "description"):
            if not getattr(node_type, attr, None):
                raise RegistryError(
                    f"node type {node_type.__qualname__} from {source or node_type.__module__} "
                    f"does not set {attr!r}"
                )
        versions = self._types.setdefault(node_type.type, {})
        existing = versions.get(node_type.version)
        if existing is not None and existing is not node_type:
            raise RegistryError(
                f"node type {node_type.type} v{node_type.version} is registered twice: "
                f"{existing.__module__}.{existing.__qualname__} and "
                f"{node_type.__module__}.{node_type.__qualname__}"
            )
        versions[node_type.version] = node_type

    def get(self, type_slug: str, version: int | None = None) -> type[NodeType] | None:
        versions = self._types.get(type_slug)
        if not versions:
            return None
        if version is None:
            return versions[max(versions)]
        return versions.get(version)

    def versions(self, type_slug: str) -> list[int]:
        return sorted(self._types.get(type_slug, {}))

    def all(self) -> list[type[NodeType]]:
        return [self._types[t][v] for t in sorted(self._types) for v in sorted(self._types[t])]

    def catalogue(self) -> list[dict[str, Any]]:
        """Every registered type and version, with its Config JSON Schema."""
        return [node_type.describe() for node_type in self.all()]


def _node_types_in(obj: Any) -> Iterable[type[NodeType]]:
    if inspect.isclass(obj) and issubclass(obj, NodeType):
        yield obj
    elif isinstance(obj, ModuleType):
        modules = [obj]
        if hasattr(obj, "__path__"):
            for info in pkgutil.walk_packages(obj.__path__, obj.__name__ + "."):
                modules.append(importlib.import_module(info.name))
        for module in modules:
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, NodeType)
                    and value.__module__ == module.__name__
                    and "type" in vars(value)
                ):
                    yield value
    else:
        for item in obj:
            yield from _node_types_in(item)


def load_registry() -> NodeRegistry:
    """Build a registry from every ``gorax.nodes`` entry point."""
    registry = NodeRegistry()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            found = list(_node_types_in(loaded))
        except Exception as exc:
            raise RegistryError(
                f"node plugin {ep.name!r} ({ep.value}) failed to load: {exc}. "
                f"Fix or uninstall the package that provides it."
            ) from exc
        for node_type in found:
            registry.register(node_type, source=f"entry point {ep.name!r}")
    return registry


@lru_cache(maxsize=1)
def get_registry() -> NodeRegistry:
    """The process-wide registry (discovered once)."""
    return load_registry()
