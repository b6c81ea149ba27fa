"""Random and mutated graphs: validation returns errors, compile returns a Plan or raises
GraphValidationError, nothing else ever escapes; valid plans respect every edge."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.examples import EXAMPLES_DIR
from tests.translator.conftest import base_graph, loop_graph, make_registry
from translator import (
    ExpressionError,
    GraphError,
    GraphValidationError,
    compile_expression,
    compile_graph,
    compile_template,
    validate_graph,
)

REGISTRY = make_registry()
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
IDS = ["a", "b", "c", "d", "e", "hook", "each", "Bad Id", ""]
TYPES = [t.type for t in REGISTRY.all()] + ["nope.nope", ""]
SNIPPETS = [
    "{{ trigger.body.x }}",
    "{{ steps.a.out }}",
    "{{ steps.b }}",
    "{{ loop.item }}",
    "{{ 1 + }}",
    "{{ credentials.pager.token }}",
    "{{ credentials[env.X] }}",
    "x {{ env.Y }} y",
    "{{ nope(1) }}",
    "{{",
    "}}",
    "{{ '}}' }}",
    "trigger.body.ok == true",
    "steps.c.n > 1",
    "plain",
]
configs = st.dictionaries(
    st.sampled_from("url value expression items credential condition cases title options filter mode extra".split()),
    st.sampled_from(SNIPPETS) | json_values,
    max_size=4,
)
nodes = st.fixed_dictionaries(
    {"id": st.sampled_from(IDS), "type": st.sampled_from(TYPES)},
    optional={
        "config": configs,
        "parentId": st.sampled_from(IDS),
        "on_error": st.sampled_from(["fail", "continue", "route", "explode"]),
        "retry": st.fixed_dictionaries({"attempts": st.integers(-1, 12)}),
        "version": st.integers(0, 3),
        "disabled": st.booleans(),
    },
)
edges = st.fixed_dictionaries(
    {"source": st.sampled_from(IDS), "target": st.sampled_from(IDS)},
    optional={
        "id": st.sampled_from(["e1", "e2", "e3"]),
        "sourceHandle": st.sampled_from(["true", "false", "error", "default", "x"]),
    },
)
graphs = st.fixed_dictionaries(
    {
        "format": st.just("gorax/graph@1"),
        "name": st.just("g"),
        "nodes": st.lists(nodes, max_size=8),
        "edges": st.lists(edges, max_size=10),
    },
    optional={"settings": st.dictionaries(st.sampled_from(["max_parallel", "timeout_seconds"]), json_values)},
)


def _check(document: Any) -> None:
    errors = validate_graph(document, registry=REGISTRY)
    assert all(isinstance(error, GraphError) and error.code and error.message for error in errors)
    json.dumps([error.to_dict() for error in errors])
    try:
        plan = compile_graph(document, registry=REGISTRY)
    except GraphValidationError as exc:
        assert [e.to_dict() for e in exc.errors] == [e.to_dict() for e in errors]
        return
    assert errors == []
    _assert_plan_respects_edges(plan)


def _assert_plan_respects_edges(plan: Any) -> None:
    position = {node_id: i for i, node_id in enumerate(plan.order)}
    for node in plan.nodes.values():
        for edge in node.outgoing:
            assert position[edge.source] < position[edge.target]
    for body in plan.bodies.values():
        _assert_plan_respects_edges(body)


@SETTINGS
@given(json_values)
def test_any_json_gives_errors_never_exceptions(document: Any) -> None:
    _check(document)


@SETTINGS
@given(graphs)
def test_random_graphs(document: dict[str, Any]) -> None:
    _check(document)


def _mutate(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["set", "drop", "add_edge", "dup_node", "reparent"]))
        items = document["nodes"] + document["edges"]
        target = data.draw(st.sampled_from(items))
        if kind == "set":
            key = data.draw(st.sampled_from(sorted(target) + ["config", "sourceHandle"]))
            target[key] = data.draw(st.sampled_from(SNIPPETS) | json_values)
        elif kind == "drop" and target:
            target.pop(data.draw(st.sampled_from(sorted(target))))
        elif kind == "add_edge":
            ids = [n.get("id") for n in document["nodes"]]
            document["edges"].append(
                {"source": data.draw(st.sampled_from(ids)), "target": data.draw(st.sampled_from(ids))}
            )
        elif kind == "dup_node":
            document["nodes"].append(copy.deepcopy(data.draw(st.sampled_from(document["nodes"]))))
        elif kind == "reparent" and "source" not in target:
            target["parentId"] = data.draw(st.sampled_from([n.get("id") for n in document["nodes"]]))
    return document


EXAMPLES = [json.loads(p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.json"))]


@SETTINGS
@given(st.sampled_from([base_graph(), loop_graph(), *EXAMPLES]), st.data())
def test_mutated_graphs(document: dict[str, Any], data: st.DataObject) -> None:
    _check(_mutate(document, data))


CEL_PIECES = [
    "trigger",
    "steps",
    ".",
    "a",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    "'x'",
    '"y"',
    "1",
    "2.5",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    ",",
    "in",
    "true",
    "null",
    "has",
    "size",
    "map",
    "filter",
    "all",
    "exists",
    "lower",
    "json_decode",
    "b'z'",
    "1u",
    "0x1F",
    "\\",
    " ",
    "{{",
    "}}",
    "dyn",
    "int",
    "string",
    "duration",
    "timestamp",
    "'1s'",
    "type",
]


@SETTINGS
@given(st.lists(st.sampled_from(CEL_PIECES), max_size=14).map("".join))
def test_any_expression_text_compiles_or_gives_expression_errors(text: str) -> None:
    scope = {"trigger": {"a": [1, {"b": "c"}], "x": None}, "steps": {"a": {"a": 1}}}
    for compile_ in (compile_expression, compile_template):
        try:
            compiled = compile_(text)
        except ExpressionError as exc:
            assert exc.message and exc.code
            continue
        try:
            json.dumps(compiled.evaluate(scope))
        except ExpressionError as exc:
            assert exc.message and "Activation" not in exc.message
