"""The node contract: what a node type declares and what it may ask of the runtime.

Pydantic only, no I/O: the translator validates graphs against it, the API serves the catalogue
from it, the runtime (``flows/``) runs it. A node type is one module with all of its behaviour::

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
            passed = ctx.evaluate("expression")
            return Routed(output=passed, handles=("true" if passed else "false",))

Everything that makes a type special is declared here, as data or a hook, so that nothing else
(executor, validation, deploy, trigger sync, the editor) names a type's slug:

- ``outputs`` and ``handles_from``: its output handles, fixed or computed from its config;
- ``join``/``join_for``: whether it waits for every live input or runs at the first;
- ``holds_slot``, ``has_body``, ``is_result``: scheduling, loop bodies, the run's result;
- ``suspends_for`` and :meth:`NodeType.resumed`: waiting for input (a person's decision);
- :meth:`NodeType.publish_blocker`: a node that may sit in a draft but never be published;
- :class:`TriggerType`: schedules, automations, webhook endpoints, event filters.

Node types are discovered through the ``gorax.nodes`` entry point group, which may name a
``NodeType`` subclass, an iterable of them, or a module/package (every subclass defined in it and
its submodules is registered). Old versions of a type stay registered beside new ones.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, ClassVar, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_jsonable_python

ENTRY_POINT_GROUP = "gorax.nodes"

#: The icons the editor ships (``web/src/editor/icons.tsx`` draws each; no network fetch). A node
#: type's ``icon`` names one of them.
ICONS = frozenset(
    {
        "play", "clock", "webhook", "bolt", "branch", "switch", "merge", "loop", "pause", "flag",
        "workflow", "wand", "code", "globe", "database", "mail", "chat", "sparkles", "user-check",
        "cloud", "bucket", "queue", "phone", "alert", "issue", "tag", "comment", "search", "puzzle",
    }
)  # fmt: skip

JoinRule = Literal["all", "any"]


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


@dataclass(frozen=True)
class Suspend:
    """A node result that asks the run to wait for input before the node is done.

    The run is suspended (no worker slot is held) until input of the node type's
    ``suspends_for`` model arrives under ``key``; then :meth:`NodeType.resumed` turns the input
    and ``data`` into the node's output. ``key`` names the input in Prefect: unique per run and
    loop iteration, made of letters, digits and ``-`` (:func:`input_key`).

    With ``rerun`` the node is run again instead (``resumed`` is not called): its ``run`` finds
    every input it received so far in ``ctx.received`` by key, and may suspend again under
    another key. A node that asks several questions in turn (an agent's gated tool calls) does so.
    """

    key: str
    data: Mapping[str, Any]
    rerun: bool = False


_PLAIN_ID = re.compile(r"[a-z0-9]+")
_NOT_KEY_CHARACTER = re.compile(r"[^a-z0-9-]")


def input_key(prefix: str, node_id: str, path: Sequence[int] = ()) -> str:
    """A key Prefect accepts for a run input: one per node and loop iteration.

    Prefect takes only lowercase letters, digits and ``-`` in such keys, and a node id may hold
    ``_``. An id of letters and digits is used as it is (keys stay stable); any other id has each
    other character replaced by ``-`` and gets ``h`` and eight hex digits of its hash, which keep
    ids that would read alike apart (``a_1`` and ``a-1``, or ``a_1`` and node ``a`` in iteration
    1). The loop path comes last.
    """
    if _PLAIN_ID.fullmatch(node_id):
        name = node_id
    else:
        digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
        name = f"{_NOT_KEY_CHARACTER.sub('-', node_id.lower())}-h{digest}"
    return f"{prefix}-{name}" + "".join(f"-{int(index)}" for index in path)


class Schedule(NodeConfig):
    """When runs happen: a cron in a timezone, or an interval."""

    cron: str | None = Field(default=None, max_length=200, description="Five-field cron, e.g. '*/5 * * * *'.")
    interval_seconds: int | None = Field(default=None, ge=60, description="Or every this many seconds.")
    timezone: str = Field(default="UTC", max_length=64, description="IANA timezone the cron is read in.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return check_cron(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> Schedule:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("set exactly one of 'cron' and 'interval_seconds'")
        return self


class ScheduleSpec(Schedule):
    """A deployment schedule: a :class:`Schedule` that may be paused."""

    active: bool = Field(default=True, description="Whether the schedule creates runs.")


_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def check_cron(expression: str) -> str:
    """A five-field cron expression (Prefect's dialect, read by croniter).

    Raises ``ValueError`` naming the field that is wrong."""
    text = expression.strip()
    if text.startswith("@"):
        if not croniter.is_valid(text):
            raise ValueError(f"cron {expression!r} is not a known macro (@hourly, @daily, @weekly, ...)")
        return expression
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expression!r} must have 5 fields (minute hour day month weekday), not {len(fields)}")
    for index, label in enumerate(_CRON_FIELDS):
        alone = ["*"] * 5
        alone[index] = fields[index]
        if not croniter.is_valid(" ".join(alone)):
            raise ValueError(f"cron {expression!r}: the {label} field {fields[index]!r} is not valid")
    if not croniter.is_valid(text):
        raise ValueError(f"cron {expression!r} is not a valid cron expression")
    return expression


class AutomationSpec(BaseModel):
    """The Prefect event that starts a run of the workflow, and what the run receives.

    The API builds the Prefect automation from it and always adds the tenant's scope, so a
    trigger only ever sees its own tenant's events whatever it asks for.
    """

    model_config = ConfigDict(extra="forbid")

    expect: tuple[str, ...] = Field(description="Event names or patterns ('gorax.workflow.*').")
    match: dict[str, str] = Field(default_factory=dict, description="Labels the event's resource must carry.")
    trigger: str = Field(description="What the run gets as ``trigger``: a Prefect template over the event.")
    narrowed_by: str | None = Field(
        default=None, description="The config field that narrows which resources match (named in errors)."
    )


@dataclass(frozen=True)
class TriggerSource:
    """What a trigger's automation may refer to: its workflow's resource and node."""

    workflow_id: str
    node_id: str
    #: The event Gorax emits for a verified webhook delivery, and the resource id it is about.
    webhook_event: str
    workflow_resource: str


@dataclass(frozen=True)
class Ejected:
    """How a node reads as plain Prefect code, for ``gorax eject`` (:mod:`translator.eject`).

    ``body`` is the body of the node's ``@task`` function: ``config`` (the node's config, its
    templates rendered through the ``gorax_cel`` helper), ``scope`` (``trigger``, ``steps``,
    ``env``, ``loop``...) and, with ``takes_inputs``, ``inputs`` (the live upstream outputs by
    node id) are in scope; it returns the node's output, or ``(output, handle)`` when ``routes``.
    """

    body: str
    #: Import lines the body (or its helpers) needs, e.g. ``"import httpx"``.
    imports: tuple[str, ...] = ()
    #: Module-level source the body calls, shared by every node of the type (written once).
    helpers: tuple[str, ...] = ()
    #: Prefect Blocks the user must create: ``(block type, block name, what it holds)``.
    blocks: tuple[tuple[str, str, str], ...] = ()
    #: Lines for the file's header docstring (a schedule, a limit of the ejected form).
    notes: tuple[str, ...] = ()
    #: Whether the body returns ``(output, handle)`` and the edges leave by handle.
    routes: bool = False
    #: Whether the body reads ``inputs``.
    takes_inputs: bool = False
    #: A trigger's filter (bare CEL over ``trigger``): the flow returns at once when it is false.
    accepts: str | None = None
    #: A container's iteration: ``foreach`` (the body returns the items) or ``while``.
    iterates: Literal["foreach", "while"] | None = None
    #: ``while``: the bare CEL checked before each iteration; both: the iteration bound.
    condition: str | None = None
    max_iterations: int | None = None
    #: Flow-body statements that replace the plain call, for a node that waits on the flow run
    #: (an approval): ``{call}`` is the task call, ``{steps}``/``{routes}`` the maps to set and
    #: ``{node}`` the node id as a literal.
    in_flow: str | None = None


def block_name(credential: str) -> str:
    """The Prefect Block name an ejected flow loads a credential by (Prefect names allow only
    lowercase letters, digits and ``-``)."""
    return credential.lower().replace("_", "-")


class Runtime(Protocol):
    """What the runtime does for container nodes (implemented in ``flows/``)."""

    async def run_body(
        self, *, loop: Mapping[str, Any], index: int, steps: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Run the node's body once with ``loop`` in scope; its result and the body's steps."""
        ...

    def has_body(self) -> bool:
        """Whether the node has a non-empty body."""
        ...

    async def run_workflow(
        self, *, graph: dict[str, Any] | None, workflow: str | None, parameters: dict[str, Any], wait: bool
    ) -> Any:
        """Run an inline graph or a published workflow of the tenant as a sub-run.

        With ``wait`` the sub-run's result, else ``{"flow_run_id": ...}``."""
        ...


class NodeContext(Protocol):
    """What a node sees while it runs (implemented by the runtime in ``flows/``)."""

    node_id: str
    label: str
    tenant_id: str | None
    flow_run_id: str | None
    #: Loop iteration indexes from the outermost loop in (empty outside loops).
    path: tuple[int, ...]
    #: Sub-workflow nesting level of this run (0 at the top).
    depth: int
    scope: dict[str, Any]
    #: Outputs of the upstream nodes whose edges are live, by node id.
    inputs: dict[str, Any]
    #: The tenant's variables as this run has them (None: not read by this run).
    env: dict[str, Any] | None
    #: Networks outbound calls may reach although private (operator's and tenant's).
    allowed_networks: list[Any]
    #: The tenant's own allow-list entries, as given (for sub-runs).
    tenant_networks: list[str]
    #: Inputs this node's earlier :class:`Suspend` (with ``rerun``) received, by key.
    received: Mapping[str, Any]
    runtime: Runtime

    @property
    def logger(self) -> Any:
        """A logging.Logger-like object whose output is masked."""
        ...

    async def credential(self, name: str) -> Any:
        """The unsealed credential Block ``name`` of the run's tenant (worker only)."""
        ...

    def evaluate(self, field_path: str, extra: dict[str, Any] | None = None) -> Any:
        """The value of a bare-CEL config field in the node's scope (plus ``extra``)."""
        ...


class NodeType:
    """Base class of node types. Subclasses set the class attributes and implement ``run``."""

    type: ClassVar[str]
    version: ClassVar[int] = 1
    display_name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str]
    #: Fixed output handles; empty (and no ``handles_from``) means the main output only.
    outputs: ClassVar[tuple[str, ...]] = ()
    #: Handles computed from the config, listed before ``outputs``: a path where ``*`` is each
    #: key of a map or each item of a list (``cases.*``, ``options.*.value``). A missing field
    #: takes its default. The editor computes the same from the catalogue (:func:`handles_at`).
    handles_from: ClassVar[str | None] = None
    #: Whether the node waits for every live input (``all``) or runs at the first (``any``).
    join: ClassVar[JoinRule] = "all"
    #: Whether the node takes one of the run's ``max_parallel`` slots while it runs. Containers
    #: (loops, sub-workflows) do not, so a body never waits for its own loop's slot.
    holds_slot: ClassVar[bool] = True
    #: Whether nodes may name this one as ``parentId`` (a loop body).
    has_body: ClassVar[bool] = False
    #: Whether the node's output is the run's result (the last such node that ran wins).
    is_result: ClassVar[bool] = False
    #: The input model a :class:`Suspend` result waits for (None: the type never suspends).
    suspends_for: ClassVar[builtins.type[BaseModel] | None] = None
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
    #: The editor's icon for the type: a name from :data:`ICONS` (None: a generic one).
    icon: ClassVar[str | None] = None
    #: A short example config showing the type in use (the editor's help; valid for ``Config``).
    example: ClassVar[Mapping[str, Any] | None] = None
    #: Why the type should no longer be used and what to use instead (None: it is current).
    deprecated: ClassVar[str | None] = None
    #: JSON Schema of the node's output, for the editor's autocomplete before any run (None:
    #: not declared; the editor then learns the fields from the last run's data).
    output_schema: ClassVar[Mapping[str, Any] | None] = None
    Config: ClassVar[builtins.type[NodeConfig]] = EmptyConfig  # `type` is the slug above
    #: The shape of the node's output, where it has a fixed one (None: any JSON). A pinned or
    #: mocked output is checked against it before a test run uses it.
    Output: ClassVar[builtins.type[BaseModel] | None] = None

    @classmethod
    def is_trigger(cls) -> bool:
        return False

    @classmethod
    def handles_for(cls, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Output handles this node offers with this (raw) config."""
        computed: tuple[str, ...] = ()
        if cls.handles_from:
            computed = handles_at(config, cls.handles_from, cls.default_config())
        return tuple(dict.fromkeys((*computed, *cls.outputs)))

    @classmethod
    def join_for(cls, config: Mapping[str, Any]) -> JoinRule:
        """The join rule with this (raw) config; a type whose rule is a setting overrides this."""
        return cls.join

    @classmethod
    def publish_blocker(cls, config: Mapping[str, Any]) -> str | None:
        """Why a graph holding this node (with this raw config) may be kept as a draft but not
        published or run; None (the default): nothing stops it. An imported placeholder says so."""
        return None

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """The JSON form of every config field that has a default."""
        defaults = {}
        for name, info in cls.Config.model_fields.items():
            if not info.is_required():
                defaults[info.alias or name] = to_jsonable_python(info.get_default(call_default_factory=True))
        return defaults

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
            "handles_from": cls.handles_from,
            "handles_default": list(handles_at({}, cls.handles_from, cls.default_config())) if cls.handles_from else [],
            "join": cls.join,
            "has_body": cls.has_body,
            "is_trigger": cls.is_trigger(),
            "credential_types": list(cls.credential_types),
            "expression_fields": list(cls.expression_fields),
            "credential_fields": list(cls.credential_fields),
            "config_schema": cls.Config.model_json_schema(),
            "icon": cls.icon,
            "example": dict(cls.example) if cls.example is not None else None,
            "deprecated": cls.deprecated,
            "output_schema": dict(cls.output_schema) if cls.output_schema is not None else None,
        }

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected | None:
        """This node (its raw config) as plain Prefect code; None: the type cannot be ejected."""
        return None

    async def run(self, config: Any, ctx: NodeContext) -> Any:
        """The node's output, a :class:`Routed` output, or a :class:`Suspend` request."""
        raise NotImplementedError(f"node type {self.type} v{self.version} cannot run")

    async def resumed(self, data: Mapping[str, Any], received: BaseModel) -> Any:
        """The output of a node whose :class:`Suspend` received ``received``."""
        raise NotImplementedError(f"node type {self.type} v{self.version} never suspends")


class TriggerType(NodeType):
    """A node that starts runs: it has no inputs, and says how runs of it come about."""

    category: ClassVar[str] = "trigger"
    #: The trigger that fired when a run names none (a person or the API started it).
    fires_by_default: ClassVar[bool] = False
    #: Whether the API gives each node of this type a webhook URL whose verified deliveries
    #: become runs (through the automation :meth:`automation` returns).
    receives_webhooks: ClassVar[bool] = False

    @classmethod
    def is_trigger(cls) -> bool:
        return True

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            **super().describe(),
            "fires_by_default": cls.fires_by_default,
            "receives_webhooks": cls.receives_webhooks,
        }

    @classmethod
    def schedules(cls, config: Any) -> list[ScheduleSpec]:
        """Deployment schedules this trigger needs (its typed, validated config)."""
        return []

    @classmethod
    def automation(cls, config: Any, source: TriggerSource) -> AutomationSpec | None:
        """The Prefect event that starts a run from this trigger, if any."""
        return None

    @classmethod
    def trigger_input(cls, config: Any, trigger: Any, scheduled_at: str) -> Any:
        """The run's ``trigger`` value when this trigger fired (``trigger`` as the run got it)."""
        return trigger

    @classmethod
    def input_schema(cls, config: Any) -> dict[str, Any] | None:
        """The JSON Schema of the input a caller passes when it starts a run of this trigger
        (its typed, validated config), e.g. an MCP tool's input schema; None: any JSON object."""
        return None

    @classmethod
    def rejects(cls, config: Any, trigger: Any, evaluate: Callable[[str, dict[str, Any]], Any]) -> str | None:
        """Why this run should end at once, unrun (None: it runs). ``evaluate`` reads a bare-CEL field."""
        return None


def handles_at(config: Mapping[str, Any], path: str, defaults: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The handle names found at ``path`` in ``config`` (``cases.*``, ``options.*.value``).

    ``*`` is each key of a map or each item of a list; the values found are handle names:
    text as is, booleans as ``true``/``false``, whole numbers without a decimal point. A
    missing first field takes its value from ``defaults``.
    """
    parts = path.split(".")
    root = parts[0]
    start = config.get(root) if isinstance(config, Mapping) and root in config else (defaults or {}).get(root)
    values: list[Any] = [start]
    for part in parts[1:]:
        found: list[Any] = []
        for value in values:
            if part == "*":
                if isinstance(value, Mapping):
                    found.extend(value.keys())
                elif isinstance(value, list):
                    found.extend(value)
            elif isinstance(value, Mapping) and part in value:
                found.append(value[part])
        values = found
    return tuple(dict.fromkeys(h for h in (handle_text(v) for v in values) if h is not None))


def handle_text(value: Any) -> str | None:
    """A value as a handle name (None: it cannot name one)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


class RegistryError(Exception):
    """A node type plugin failed to load or declares something invalid."""


class NodeRegistry:
    """Every registered node type, by slug and version."""

    def __init__(self) -> None:
        self._types: dict[str, dict[int, builtins.type[NodeType]]] = {}

    def register(self, node_type: builtins.type[NodeType], *, source: str = "") -> None:
        for attr in ("type", "display_name", "category", "description"):
            if not getattr(node_type, attr, None):
                raise RegistryError(
                    f"node type {node_type.__qualname__} from {source or node_type.__module__} does not set {attr!r}"
                )
        if node_type.icon is not None and node_type.icon not in ICONS:
            raise RegistryError(
                f"node type {node_type.type} from {source or node_type.__module__} sets icon "
                f"{node_type.icon!r}, which the editor does not ship; use one of {', '.join(sorted(ICONS))}"
            )
        if node_type.category == "trigger" and not node_type.is_trigger():
            raise RegistryError(
                f"node type {node_type.type} from {source or node_type.__module__} is in category "
                "'trigger' but is not a TriggerType: subclass translator.nodetypes.TriggerType"
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

    def get(self, type_slug: str, version: int | None = None) -> builtins.type[NodeType] | None:
        versions = self._types.get(type_slug)
        if not versions:
            return None
        if version is None:
            return versions[max(versions)]
        return versions.get(version)

    def versions(self, type_slug: str) -> list[int]:
        return sorted(self._types.get(type_slug, {}))

    def all(self) -> list[builtins.type[NodeType]]:
        return [self._types[t][v] for t in sorted(self._types) for v in sorted(self._types[t])]

    def triggers(self) -> list[builtins.type[NodeType]]:
        """The newest version of every trigger type."""
        newest = [self.get(slug) for slug in sorted(self._types)]
        return [t for t in newest if t is not None and t.is_trigger()]

    def catalogue(self) -> list[dict[str, Any]]:
        """Every registered type and version, with its Config JSON Schema."""
        return [node_type.describe() for node_type in self.all()]


def _node_types_in(obj: Any) -> Iterable[builtins.type[NodeType]]:
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
