"""Validation of a ``gorax/graph@1`` document: every problem at once, each placed and explained."""

from __future__ import annotations

import difflib
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from translator._configs import (
    CREDENTIAL_NAME,
    ConfigAnalysis,
    analyse_config,
    credential_hint,
    display_path,
    validate_config,
)
from translator._graphs import ancestor_masks, cycles, topological_order
from translator.errors import GraphError
from translator.expressions import KNOWN_FUNCTIONS, KNOWN_IDENTS, Expression
from translator.models import GRAPH_FORMAT, Edge, Graph, GraphSettings, Node
from translator.nodetypes import NodeRegistry, NodeType, get_registry
from translator.testcases import check_tests

_HEADER_FIELDS = ("format", "name", "description", "settings")
_TOP_LEVEL = {*_HEADER_FIELDS, "nodes", "edges", "viewport", "tests"}


@dataclass
class Analysis:
    """Everything validation learnt; the planner builds the Plan from it."""

    errors: list[GraphError] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    settings: GraphSettings | None = None
    nodes: dict[str, Node] = field(default_factory=dict)  # in document order
    node_types: dict[str, type[NodeType]] = field(default_factory=dict)
    configs: dict[str, ConfigAnalysis] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)  # edges whose two ends exist
    level_of: dict[str, str | None] = field(default_factory=dict)  # node -> enclosing loop
    orders: dict[str | None, list[str]] = field(default_factory=dict)  # level -> topological order
    misplaced: set[str] = field(default_factory=set)  # nodes whose parentId is wrong
    registry: NodeRegistry = field(default_factory=NodeRegistry, repr=False)

    def type_names(self, wanted: Callable[[type[NodeType]], bool]) -> str:
        """The registered type slugs for which ``wanted`` holds, for messages ('a, b or c')."""
        names = sorted({t.type for t in self.registry.all() if wanted(t)})
        return " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)

    def add(
        self, code: str, message: str, *, node_id: str | None = None, edge_id: str | None = None, path: str = ""
    ) -> None:
        self.errors.append(GraphError(node_id=node_id, edge_id=edge_id, path=path, code=code, message=message))

    def graph(self) -> Graph:
        """The validated document as a model (only meaningful without errors)."""
        return Graph.model_construct(
            format=GRAPH_FORMAT,
            name=self.header.get("name", ""),
            description=self.header.get("description", ""),
            settings=self.settings or GraphSettings(),
            nodes=list(self.nodes.values()),
            edges=self.edges,
        )


def validate_graph(graph: Any, *, registry: NodeRegistry | None = None) -> list[GraphError]:
    """Every problem of a graph document (an empty list when it is valid). Never raises on bad input."""
    return analyse(graph, registry=registry).errors


@contextmanager
def gc_paused() -> Iterator[None]:
    # Validation allocates many small, short-lived objects and creates no garbage cycles worth
    # chasing mid-way; the collector's passes over the whole heap would cost more than the work.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyse(graph: Any, *, registry: NodeRegistry | None = None) -> Analysis:
    """Validate a graph document and keep what was learnt for compiling it."""
    registry = registry if registry is not None else get_registry()
    with gc_paused():
        return _analyse(graph, registry)


def _analyse(graph: Any, registry: NodeRegistry) -> Analysis:
    result = Analysis(registry=registry)
    if not isinstance(graph, dict):
        result.add("invalid_graph", f"a graph is a JSON object, not {type(graph).__name__}")
        return result
    _check_header(graph, result)
    raw_nodes = graph.get("nodes")
    raw_edges = graph.get("edges", [])
    if not isinstance(raw_nodes, list):
        result.add("invalid_field", "'nodes' must be a list of nodes", path="nodes")
        raw_nodes = []
    if not isinstance(raw_edges, list):
        result.add("invalid_field", "'edges' must be a list of edges", path="edges")
        raw_edges = []
    _check_nodes(raw_nodes, registry, result)
    edges = _check_edges(raw_edges, result)
    _check_parents(result)
    _check_levels(edges, result)
    _check_references(result)
    node_ids = {str(node["id"]) for node in raw_nodes if isinstance(node, dict) and isinstance(node.get("id"), str)}
    result.errors.extend(check_tests(graph.get("tests"), node_ids=node_ids))
    return result


def _model_errors(exc: ValidationError, *, prefix: str = "") -> list[tuple[str, str, str]]:
    """(path, code, message) for each pydantic error of the graph's own models."""
    out = []
    for item in exc.errors(include_url=False):
        path = display_path(tuple(item.get("loc", ())), prefix)
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            out.append((path, "unknown_field", "unknown field"))
        elif kind == "missing":
            out.append((path, "missing_field", "this field is required"))
        else:
            message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
            shown = repr(item.get("input"))
            out.append((path, "invalid_field", f"{message} (got {shown[:60]})"))
    return out


def _check_header(graph: dict[str, Any], result: Analysis) -> None:
    header = {key: graph[key] for key in _HEADER_FIELDS if key in graph}
    for key in graph:
        if key not in _TOP_LEVEL:
            result.add("unknown_field", f"unknown field {key!r} in the graph", path=str(key))
    if header.get("format") != GRAPH_FORMAT:
        got = f"{header['format']!r}" if "format" in header else "nothing"
        result.add("invalid_format", f"'format' must be {GRAPH_FORMAT!r}, got {got}", path="format")
    try:
        shell = Graph.model_validate({**header, "format": GRAPH_FORMAT, "nodes": []})
        result.settings = shell.settings
        result.header = {"name": shell.name, "description": shell.description}
    except ValidationError as exc:
        for path, code, message in _model_errors(exc):
            result.add(code, message, path=path)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_nodes(raw_nodes: list[Any], registry: NodeRegistry, result: Analysis) -> None:
    known_types = sorted({t.type for t in registry.all()})
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            result.add("invalid_node", "a node is a JSON object", path=f"nodes[{index}]")
            continue
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        try:
            node = Node.model_validate(raw)
        except ValidationError as exc:
            for path, code, message in _model_errors(exc):
                if path == "id":
                    message = "a node id is 1-63 lowercase letters, digits or '_', starting with a letter"
                result.add(code, message, node_id=raw_id, path=path if raw_id else f"nodes[{index}].{path}")
            if raw_id and raw_id not in result.nodes:
                result.level_of.setdefault(raw_id, None)  # it exists: edges to it are not "missing"
            continue
        if node.id in result.nodes:
            result.add("duplicate_node_id", f"another node already has the id '{node.id}'", node_id=node.id, path="id")
            continue
        result.nodes[node.id] = node
        node_type = registry.get(node.type, node.version)
        if node_type is None:
            versions = registry.versions(node.type)
            if versions:
                listed = ", ".join(str(v) for v in versions)
                result.add(
                    "unknown_node_version",
                    f"node type {node.type!r} has no version {node.version} (registered: {listed})",
                    node_id=node.id,
                    path="version",
                )
            else:
                result.add(
                    "unknown_node_type",
                    f"unknown node type {node.type!r}" + _suggest(node.type, known_types),
                    node_id=node.id,
                    path="type",
                )
            continue
        result.node_types[node.id] = node_type
        result.errors.extend(validate_config(node.id, node_type, node.config))
        analysis = analyse_config(node.id, node_type, node.config)
        result.errors.extend(analysis.errors)
        result.configs[node.id] = analysis


def _edge_place(edge: Edge | None, index: int, raw_id: str | None, path: str) -> dict[str, Any]:
    edge_id = edge.id if edge is not None else raw_id
    return {"edge_id": edge_id, "path": path if edge_id else f"edges[{index}].{path}".rstrip(".")}


def _check_edges(raw_edges: list[Any], result: Analysis) -> list[tuple[int, Edge]]:
    edges: list[tuple[int, Edge]] = []
    seen_ids: set[str] = set()
    seen_links: set[tuple[str, str | None, str]] = set()
    known = set(result.nodes) | set(result.level_of)
    for index, raw in enumerate(raw_edges):
        if not isinstance(raw, dict):
            result.add("invalid_edge", "an edge is a JSON object", path=f"edges[{index}]")
            continue
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        try:
            edge = Edge.model_validate(raw)
        except ValidationError as exc:
            for path, code, message in _model_errors(exc):
                result.add(code, message, **_edge_place(None, index, raw_id, path))
            continue
        link = (edge.source, edge.source_handle, edge.target)
        if edge.id is not None and edge.id in seen_ids:
            result.add(
                "duplicate_edge_id",
                f"another edge already has the id '{edge.id}'",
                **_edge_place(edge, index, None, "id"),
            )
            continue
        if link in seen_links:
            result.add("duplicate_edge", f"the edge {edge.key} is drawn twice", **_edge_place(edge, index, None, ""))
            continue
        if edge.id is not None:
            seen_ids.add(edge.id)
        seen_links.add(link)
        missing = [(end, getattr(edge, end)) for end in ("source", "target") if getattr(edge, end) not in known]
        for end, node_id in missing:
            result.add(
                "missing_node",
                f"the edge's {end} '{node_id}' is not a node of this graph" + _suggest(node_id, list(result.nodes)),
                **_edge_place(edge, index, None, end),
            )
        if not missing and edge.source in result.nodes and edge.target in result.nodes:
            edges.append((index, edge))
    return edges


def _check_parents(result: Analysis) -> None:
    for node in result.nodes.values():
        parent = node.parent_id
        if parent is None:
            result.level_of[node.id] = None
            continue
        parent_type = result.node_types.get(parent)
        if parent not in result.nodes:
            result.add(
                "invalid_parent", f"parentId '{parent}' is not a node of this graph", node_id=node.id, path="parentId"
            )
            parent = None
        elif parent == node.id:
            result.add("invalid_parent", "a node cannot be its own parent", node_id=node.id, path="parentId")
            parent = None
        elif parent_type is not None and not parent_type.has_body:
            containers = result.type_names(lambda t: t.has_body) or "no"
            result.add(
                "invalid_parent",
                f"parentId '{parent}' is a {parent_type.type} node; only {containers} nodes have bodies",
                node_id=node.id,
                path="parentId",
            )
            parent = None
        if parent is None:
            result.misplaced.add(node.id)
        result.level_of[node.id] = parent
    # Loops nested in a circle have no outermost loop: break every such chain.
    for node_id in list(result.nodes):
        chain = [node_id]
        while (parent := result.level_of.get(chain[-1])) is not None:
            if parent in chain:
                names = " -> ".join(chain[chain.index(parent) :] + [parent])
                result.add("invalid_parent", f"loops are nested in a circle: {names}", node_id=parent, path="parentId")
                result.level_of[parent] = None
                result.misplaced.add(parent)
                break
            chain.append(parent)


def _level_name(level: str | None) -> str:
    return f"inside loop '{level}'" if level else "outside any loop"


def _check_levels(edges: list[tuple[int, Edge]], result: Analysis) -> None:
    level_nodes: dict[str | None, list[str]] = {None: []}
    for node_id in result.nodes:
        level_nodes.setdefault(result.level_of.get(node_id), []).append(node_id)
    successors: dict[str, list[str]] = {}
    incoming: dict[str, int] = {}
    for index, edge in edges:
        source_level, target_level = result.level_of.get(edge.source), result.level_of.get(edge.target)
        source_type = result.node_types.get(edge.source)
        target_type = result.node_types.get(edge.target)
        if source_level != target_level:
            result.add(
                "edge_crosses_loop",
                f"the edge from '{edge.source}' ({_level_name(source_level)}) "
                f"to '{edge.target}' ({_level_name(target_level)}) crosses a loop boundary; "
                "connect to or from the loop node instead",
                **_edge_place(edge, index, None, ""),
            )
            continue
        if target_type is not None and target_type.is_trigger():
            result.add(
                "trigger_has_incoming",
                f"trigger '{edge.target}' cannot have incoming edges (this one comes from '{edge.source}')",
                node_id=edge.target,
                path="",
            )
            continue
        _check_handle(index, edge, source_type, result)
        successors.setdefault(edge.source, []).append(edge.target)
        incoming[edge.target] = incoming.get(edge.target, 0) + 1
        result.edges.append(edge)
    triggers = [n for n in level_nodes[None] if _is_trigger(result, n)]
    if not triggers and (result.nodes or not result.level_of):  # nodes that failed say why
        kinds = result.type_names(lambda t: t.is_trigger())
        result.add("no_trigger", f"the workflow has no trigger node ({kinds}), so nothing can start it", path="nodes")
    for level, members in level_nodes.items():
        order, stuck = topological_order(members, successors)
        result.orders[level] = order
        for cycle in cycles(stuck, successors):
            path = " -> ".join(cycle)
            loops = result.type_names(lambda t: t.has_body) or "loop"
            result.add(
                "cycle", f"these nodes form a cycle: {path}; repeat work with a {loops} node instead", node_id=cycle[0]
            )
    for loop_id, node_type in result.node_types.items():
        if node_type.has_body and not level_nodes.get(loop_id):
            result.add(
                "empty_loop",
                f"loop '{loop_id}' has no body: set parentId: '{loop_id}' on the nodes it repeats",
                node_id=loop_id,
            )
    for node_id in result.nodes:
        level = result.level_of.get(node_id)
        if _is_trigger(result, node_id) and level is not None:
            result.add("trigger_in_loop", "a trigger cannot be inside a loop body", node_id=node_id, path="parentId")
        elif (
            level is None
            and node_id not in incoming
            and node_id in result.node_types
            and triggers
            and not _is_trigger(result, node_id)
            and node_id not in result.misplaced
        ):
            result.add(
                "unreachable_node",
                f"node '{node_id}' has no incoming edge and is not a "
                "trigger, so it never runs; connect it to the nodes before it",
                node_id=node_id,
            )


def _is_trigger(result: Analysis, node_id: str) -> bool:
    node_type = result.node_types.get(node_id)
    return node_type is not None and node_type.is_trigger()


def _check_handle(index: int, edge: Edge, source_type: type[NodeType] | None, result: Analysis) -> None:
    handle = edge.source_handle
    if handle is None or source_type is None:
        return
    source = result.nodes[edge.source]
    routes_errors = source.on_error == "route"
    if handle == "error":
        if not routes_errors:
            result.add(
                "invalid_handle",
                f"the edge leaves '{edge.source}' by its 'error' output, "
                f"but '{edge.source}' has on_error: {source.on_error!r}; set on_error: 'route'",
                **_edge_place(edge, index, None, "sourceHandle"),
            )
        return
    try:
        handles = tuple(source_type.handles_for(source.config))
    except Exception:  # noqa: BLE001 - a plugin's handles_for choking on a broken config: the config error says why
        handles = tuple(source_type.outputs)
    if handle in handles:
        return
    offered = [*handles, *(["error"] if routes_errors else [])]
    if offered:
        listed = ", ".join(repr(h) for h in offered)
        hint = f"its outputs are {listed}"
    else:
        hint = "it has a single output; remove sourceHandle"
    result.add(
        "invalid_handle",
        f"'{edge.source}' ({source_type.type}) has no output {handle!r}: {hint}",
        **_edge_place(edge, index, None, "sourceHandle"),
    )


def _check_references(result: Analysis) -> None:
    """What expressions read: steps that run before, literal credential names, known names."""
    bit = {node_id: i for i, node_id in enumerate(result.nodes)}
    predecessors: dict[str, list[str]] = {}
    for edge in result.edges:
        predecessors.setdefault(edge.target, []).append(edge.source)
    masks: dict[str, int] = {}
    for order in result.orders.values():
        masks.update(ancestor_masks(order, predecessors, bit))
    outer: dict[str | None, int] = {None: 0}

    def visible_from_level(level: str | None) -> int | None:
        # Inside a loop body: what the loop itself may read (its ancestors and theirs outward).
        if level in outer:
            return outer[level]
        if level not in masks:
            return None
        parent = visible_from_level(result.level_of.get(level))
        outer[level] = None if parent is None else parent | masks[level]  # type: ignore[assignment]
        return outer[level]

    body_bits: dict[str, int] = {}
    for node_id, level in result.level_of.items():
        if level is not None and node_id in bit:
            body_bits[level] = body_bits.get(level, 0) | (1 << bit[node_id])
    for node_id, analysis in result.configs.items():
        level = result.level_of.get(node_id)
        node_type = result.node_types[node_id]
        is_loop = node_type.has_body
        allowed = None
        if node_id in masks and (base := visible_from_level(level)) is not None:
            allowed = masks[node_id] | base | (body_bits.get(node_id, 0) if is_loop else 0)
        for path, source, expression, bare in analysis.uses:
            refs = expression.references
            for code, message in _static_issues(expression, bare):
                result.add(code, f"{source}: {message}", node_id=node_id, path=path)
            if level is None and "loop" in refs.roots and not (is_loop and bare):
                result.add(
                    "loop_outside_body",
                    f"{source}: loop.item and loop.index exist only inside a loop body",
                    node_id=node_id,
                    path=path,
                )
            for step in refs.steps:
                if allowed is None or step not in bit or not allowed >> bit[step] & 1:
                    _check_step(result, node_id, step, allowed, bit, source, {"node_id": node_id, "path": path})


def _static_issues(expression: Expression, bare: bool) -> tuple[tuple[str, str], ...]:
    """Problems an expression has wherever it stands, computed once per compiled expression."""
    cache = expression.issues
    if bare in cache:
        return cache[bare]
    refs = expression.references
    issues = []
    for name in sorted(refs.credentials):
        if not CREDENTIAL_NAME.match(name):
            issues.append(("invalid_credential", credential_hint(name)))
    if refs.credentials_dynamic:
        message = "name the credential literally, as credentials.<name>.<field> or credentials['<name>'].<field>"
        issues.append(("invalid_credential", message))
    for name in sorted(refs.functions - KNOWN_FUNCTIONS):
        issues.append(("unknown_function", f"there is no function '{name}'" + _suggest(name, sorted(KNOWN_FUNCTIONS))))
    if not bare:  # bare-CEL fields may have names their node type binds (a switch's `value`)
        for name in sorted(refs.roots - KNOWN_IDENTS):
            message = f"'{name}' is not defined; use trigger, steps, loop, env, credentials, workflow or run"
            issues.append(("unknown_name", message))
    cache[bare] = tuple(issues)
    return cache[bare]


def _check_step(
    result: Analysis,
    node_id: str,
    step: str,
    allowed: int | None,
    bit: dict[str, int],
    source: str,
    place: dict[str, Any],
) -> None:
    if step not in bit:
        result.add(
            "unknown_step",
            f"{source}: node '{node_id}' reads steps.{step}, but there is no node '{step}'" + _suggest(step, list(bit)),
            **place,
        )
    elif step == node_id:
        result.add("step_not_upstream", f"{source}: node '{node_id}' reads its own output steps.{step}", **place)
    elif allowed is not None and not allowed >> bit[step] & 1:
        step_level = result.level_of.get(step)
        enclosing = []
        level = result.level_of.get(node_id)
        while level is not None:
            enclosing.append(level)
            level = result.level_of.get(level)
        if step in enclosing:
            result.add(
                "step_not_upstream",
                f"{source}: node '{node_id}' reads steps.{step}, but it "
                f"runs inside loop '{step}', whose output exists only after every iteration; "
                "use loop.item, loop.index or the body's own steps",
                **place,
            )
        elif step_level is not None and step_level not in enclosing:
            result.add(
                "step_not_upstream",
                f"{source}: node '{node_id}' reads steps.{step}, but "
                f"{step} runs inside loop '{step_level}'; read steps.{step_level}, the list of "
                "its iterations' results",
                **place,
            )
        else:
            result.add(
                "step_not_upstream",
                f"{source}: node '{node_id}' reads steps.{step}, but {step} does not run before {node_id}",
                **place,
            )
