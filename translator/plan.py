"""The Plan: a validated graph, compiled, ready for the runtime to execute level by level.

A Plan covers one level of the graph: the top level, or one loop's body (``bodies``). Each
PlanNode carries its compiled templates and bare-CEL fields, so the runtime never parses CEL
and never compiles anything that arrives at run time.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from translator._configs import Path, config_fields, display_path, pydantic_errors
from translator.errors import ConfigError, ExpressionError, GraphError, GraphValidationError
from translator.expressions import Expression, Template
from translator.models import Graph, GraphSettings, RetryPolicy
from translator.nodetypes import NodeRegistry, NodeType
from translator.validate import Analysis, analyse, gc_paused


@dataclass(frozen=True)
class PlanEdge:
    """An edge inside one level; ``handle`` is the source's output it leaves from (None: main)."""

    id: str
    source: str
    target: str
    handle: str | None


@dataclass(frozen=True)
class PlanNode:
    """One node, resolved against its node type, with its expressions compiled."""

    id: str
    name: str
    type: str
    version: int
    node_type: builtins.type[NodeType]  # `type` is the slug field above
    config: Mapping[str, Any] = field(hash=False, compare=False)
    retry: RetryPolicy | None
    timeout_seconds: float | None
    on_error: str
    disabled: bool
    parent_id: str | None
    incoming: tuple[PlanEdge, ...]
    outgoing: tuple[PlanEdge, ...]
    credential_refs: frozenset[str]
    #: ``all``: runs when every upstream node finished; ``any``: at its first live input.
    join: str = "all"
    templates: Mapping[Path, Template] = field(default_factory=dict, hash=False, compare=False, repr=False)
    expressions: Mapping[str, Expression] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def render_config(self, scope: dict[str, Any]) -> BaseModel:
        """The node type's Config, with every template rendered against ``scope``, then validated.

        Raises ExpressionError (a template failed) or ConfigError (the rendered config does not fit).
        Bare-CEL fields stay as written: evaluate them with :meth:`evaluate`.
        """
        rendered = _render(self.config, (), self.templates, scope, self.id) if self.templates else self.config
        try:
            return self.node_type.Config.model_validate(rendered)
        except ValidationError as exc:
            errors = pydantic_errors(self.id, exc, lenient=False, fields=config_fields(self.node_type))
            raise ConfigError(self.id, errors) from exc

    def evaluate(self, field_path: str, scope: dict[str, Any]) -> Any:
        """The value of a bare-CEL config field (``expression``, ``condition``, ``cases.high``)."""
        key = field_path.removeprefix("config.")
        expression = self.expressions.get(key)
        if expression is None:
            known = ", ".join(sorted(self.expressions)) or "none"
            raise LookupError(f"node '{self.id}' has no bare-CEL field {field_path!r} (its fields: {known})")
        try:
            return expression.evaluate(scope)
        except ExpressionError as exc:
            raise exc.located(node_id=self.id, path=f"config.{key}") from exc


def _render(value: Any, path: Path, templates: Mapping[Path, Template], scope: dict[str, Any], node_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _render(v, (*path, k), templates, scope, node_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, (*path, i), templates, scope, node_id) for i, v in enumerate(value)]
    if isinstance(value, str):
        template = templates.get(path)
        if template is not None:
            try:
                # The result is data: it is never looked at for templates again.
                return template.evaluate(scope)
            except ExpressionError as exc:
                raise exc.located(node_id=node_id, path=display_path(path)) from exc
    return value


@dataclass(frozen=True)
class Plan:
    """One level of a compiled graph: the top level, or a loop body (in ``bodies``)."""

    name: str
    description: str
    settings: GraphSettings
    nodes: Mapping[str, PlanNode] = field(hash=False, compare=False)
    order: tuple[str, ...]
    triggers: tuple[str, ...]
    bodies: Mapping[str, Plan] = field(hash=False, compare=False)
    last_nodes: tuple[str, ...]
    graph: Graph = field(hash=False, compare=False, repr=False)

    @property
    def credential_refs(self) -> frozenset[str]:
        """Every credential name this level and the loop bodies in it use."""
        return frozenset().union(*(node.credential_refs for node in self.walk()))

    def walk(self) -> Iterator[PlanNode]:
        """Every node of this level and of the loop bodies inside it."""
        yield from self.nodes.values()
        for body in self.bodies.values():
            yield from body.walk()

    def reads(self, root: str) -> bool:
        """Whether any expression of the graph (loop bodies included) reads ``root`` (``env``...)."""
        for node in self.walk():
            compiled: tuple[Template | Expression, ...] = (*node.templates.values(), *node.expressions.values())
            if any(root in each.references.roots for each in compiled):
                return True
        return False

    def publish_blockers(self) -> list[GraphError]:
        """Why this graph cannot be published or run although it validates (empty: it can):
        one ``not_publishable`` problem per node whose type says so (an imported placeholder)."""
        problems = []
        for node in self.walk():
            reason = node.node_type.publish_blocker(node.config)
            if reason:
                problems.append(
                    GraphError(node_id=node.id, path="type", code="not_publishable", message=f"{node.type}: {reason}")
                )
        return problems

    def find(self, node_id: str) -> PlanNode | None:
        """A node of this level or of any loop body inside it."""
        if node_id in self.nodes:
            return self.nodes[node_id]
        for body in self.bodies.values():
            found = body.find(node_id)
            if found is not None:
                return found
        return None


def compile_graph(graph: dict[str, Any] | Graph, *, registry: NodeRegistry | None = None) -> Plan:
    """Validate and compile a graph document; raises GraphValidationError listing every problem."""
    document = graph.to_json() if isinstance(graph, Graph) else graph
    analysis = analyse(document, registry=registry)
    if analysis.errors:
        raise GraphValidationError(analysis.errors)
    with gc_paused():
        return build_plan(analysis)


def build_plan(analysis: Analysis) -> Plan:
    """The Plan of an analysis without errors."""
    graph = analysis.graph()
    incoming: dict[str, list[PlanEdge]] = {}
    outgoing: dict[str, list[PlanEdge]] = {}
    for edge in analysis.edges:
        plan_edge = PlanEdge(edge.key, edge.source, edge.target, edge.source_handle)
        outgoing.setdefault(edge.source, []).append(plan_edge)
        incoming.setdefault(edge.target, []).append(plan_edge)
    nodes: dict[str, PlanNode] = {}
    for node_id, node in analysis.nodes.items():
        node_type = analysis.node_types[node_id]
        config = analysis.configs[node_id]
        credentials = set(config.credentials)
        for _path, _source, expression, _bare in config.uses:
            credentials |= expression.references.credentials
        nodes[node_id] = PlanNode(
            id=node_id,
            name=node.label,
            type=node_type.type,
            version=node_type.version,
            node_type=node_type,
            config=node.config,
            retry=node.retry,
            timeout_seconds=node.timeout_seconds,
            on_error=node.on_error,
            disabled=node.disabled,
            parent_id=node.parent_id,
            incoming=tuple(incoming.get(node_id, ())),
            outgoing=tuple(outgoing.get(node_id, ())),
            credential_refs=frozenset(credentials),
            join=node_type.join_for(node.config),
            templates=MappingProxyType(config.templates),
            expressions=MappingProxyType(config.expressions),
        )
    return _level(None, analysis, nodes, graph)


def _level(level: str | None, analysis: Analysis, nodes: dict[str, PlanNode], graph: Graph) -> Plan:
    order = tuple(analysis.orders.get(level, ()))
    members = {node_id: nodes[node_id] for node_id in order}
    bodies = {
        node_id: _level(node_id, analysis, nodes, graph) for node_id in order if nodes[node_id].node_type.has_body
    }
    return Plan(
        name=graph.name,
        description=graph.description,
        settings=graph.settings,
        nodes=MappingProxyType(members),
        order=order,
        triggers=tuple(n for n in order if members[n].node_type.is_trigger()),
        bodies=MappingProxyType(bodies),
        last_nodes=tuple(n for n in order if not members[n].outgoing),
        graph=graph,
    )
