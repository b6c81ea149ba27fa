"""Broken graphs, each with exactly the errors it must produce (code, node, edge, path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.translator.conftest import base_graph, loop_graph, node
from translator import GraphError, validate_graph

Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(graph: dict[str, Any]) -> None:
        target = graph
        for key in path[:-1]:
            # In a list, a string key picks the item with that id.
            target = (
                next(i for i in target if i["id"] == key)
                if isinstance(target, list) and isinstance(key, str)
                else target[key]
            )
        target[path[-1]] = value

    return mutate


def _add_node(**fields: Any) -> Mutation:
    return lambda graph: graph["nodes"].append(fields)


def _add_edge(**fields: Any) -> Mutation:
    return lambda graph: graph["edges"].append(fields)


def _all(*mutations: Mutation) -> Mutation:
    def mutate(graph: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(graph)

    return mutate


def _loop_graph(graph: dict[str, Any]) -> None:
    looped = loop_graph()
    graph["nodes"], graph["edges"] = looped["nodes"], looped["edges"]


CASES: list[tuple[str, Mutation, set[tuple[str, str | None, str | None, str]]]] = [
    ("not-a-graph-format", _set(["format"], "gorax/graph@2"), {("invalid_format", None, None, "format")}),
    ("unknown-top-level-key", _set(["nodez"], []), {("unknown_field", None, None, "nodez")}),
    ("bad-settings", _set(["settings"], {"max_parallel": 0}), {("invalid_field", None, None, "settings.max_parallel")}),
    ("unknown-type", _set(["nodes", "notify", "type"], "htp.request"), {("unknown_node_type", "notify", None, "type")}),
    ("unknown-version", _set(["nodes", "notify", "version"], 7), {("unknown_node_version", "notify", None, "version")}),
    (
        "config-wrong-type",
        _set(["nodes", "notify", "config"], {"url": "x", "timeout_seconds": "soon"}),
        {("invalid_config", "notify", None, "config.timeout_seconds")},
    ),
    (
        "config-unknown-key",
        _set(["nodes", "notify", "config"], {"url": "x", "urll": "{{ env.X }}"}),
        {("invalid_config", "notify", None, "config.urll")},
    ),
    (
        "config-missing-key",
        _set(["nodes", "notify", "config"], {"method": "POST"}),
        {("invalid_config", "notify", None, "config.url")},
    ),
    (
        "node-typo-field",
        _set(["nodes", "notify", "retyr"], {"attempts": 2}),
        {("unknown_field", "notify", None, "retyr")},
    ),
    (
        "retry-out-of-range",
        _set(["nodes", "notify", "retry"], {"attempts": 11}),
        {("invalid_field", "notify", None, "retry.attempts")},
    ),
    ("bad-node-id", _add_node(id="Bad Id", type="data.transform"), {("invalid_field", "Bad Id", None, "id")}),
    (
        "duplicate-node-id",
        _add_node(id="notify", type="data.transform", config={}),
        {("duplicate_node_id", "notify", None, "id")},
    ),
    ("duplicate-edge-id", _add_edge(id="e1", source="ok", target="notify"), {("duplicate_edge_id", None, "e1", "id")}),
    ("duplicate-edge", _add_edge(source="enrich", target="notify"), {("duplicate_edge", None, None, "edges[3]")}),
    (
        "edge-to-missing-node",
        _add_edge(id="e9", source="notify", target="nobody"),
        {("missing_node", None, "e9", "target")},
    ),
    (
        "condition-bad-handle",
        _set(["edges", 1, "sourceHandle"], "yes"),
        {("invalid_handle", None, "e2", "sourceHandle")},
    ),
    (
        "handle-on-single-output",
        _add_edge(id="e9", source="enrich", sourceHandle="done", target="notify"),
        {("invalid_handle", None, "e9", "sourceHandle")},
    ),
    (
        "error-handle-without-route",
        _add_edge(id="e9", source="enrich", sourceHandle="error", target="notify"),
        {("invalid_handle", None, "e9", "sourceHandle")},
    ),
    ("cycle", _add_edge(id="back", source="notify", target="ok"), {("cycle", "ok", None, "")}),
    ("self-loop", _add_edge(id="self", source="notify", target="notify"), {("cycle", "notify", None, "")}),
    (
        "trigger-with-incoming",
        _add_edge(id="e9", source="notify", target="hook"),
        {("trigger_has_incoming", "hook", None, "")},
    ),
    ("no-trigger", lambda g: (g["nodes"].pop(0), g["edges"].pop(0)), {("no_trigger", None, None, "nodes")}),
    ("empty-graph", lambda g: (g["nodes"].clear(), g["edges"].clear()), {("no_trigger", None, None, "nodes")}),
    (
        "unreachable",
        _add_node(id="lonely", type="data.transform", config={"value": 1}),
        {("unreachable_node", "lonely", None, "")},
    ),
    (
        "expression-syntax-template",
        _set(["nodes", "notify", "config", "url"], "{{ env.CHAT + }}"),
        {("expression_syntax", "notify", None, "config.url")},
    ),
    (
        "expression-syntax-bare",
        _set(["nodes", "ok", "config", "expression"], "trigger.body.status =="),
        {("expression_syntax", "ok", None, "config.expression")},
    ),
    (
        "bare-field-with-braces",
        _set(["nodes", "ok", "config", "expression"], "{{ trigger.body.ok }}"),
        {("expression_syntax", "ok", None, "config.expression")},
    ),
    (
        "unclosed-template",
        _set(["nodes", "notify", "config", "url"], "{{ env.CHAT"),
        {("expression_syntax", "notify", None, "config.url")},
    ),
    (
        "reads-step-not-before",
        _set(["nodes", "enrich", "config", "url"], "{{ steps.notify.url }}"),
        {("step_not_upstream", "enrich", None, "config.url")},
    ),
    (
        "reads-unknown-step",
        _set(["nodes", "notify", "config", "url"], "{{ steps.enrch.url }}"),
        {("unknown_step", "notify", None, "config.url")},
    ),
    (
        "reads-own-output",
        _set(["nodes", "notify", "config", "url"], "{{ steps.notify.url }}"),
        {("step_not_upstream", "notify", None, "config.url")},
    ),
    (
        "unknown-name",
        _set(["nodes", "notify", "config", "url"], "{{ trigerr.body.url }}"),
        {("unknown_name", "notify", None, "config.url")},
    ),
    (
        "unknown-function",
        _set(["nodes", "notify", "config", "url"], "{{ base64Encode(env.CHAT) }}"),
        {("unknown_function", "notify", None, "config.url")},
    ),
    (
        "loop-outside-body",
        _set(["nodes", "notify", "config", "url"], "{{ loop.item }}"),
        {("loop_outside_body", "notify", None, "config.url")},
    ),
    (
        "malformed-credential",
        _set(["nodes", "enrich", "config", "credential"], "GitHub Token"),
        {("invalid_credential", "enrich", None, "config.credential")},
    ),
    (
        "templated-credential",
        _set(["nodes", "enrich", "config", "credential"], "{{ env.CRED }}"),
        {("invalid_credential", "enrich", None, "config.credential")},
    ),
    (
        "declared-credential-field",
        _set(["nodes", "hook", "config", "signature"], {"secret": "Not Valid"}),
        {("invalid_credential", "hook", None, "config.signature.secret")},
    ),
    (
        "dynamic-credential-in-template",
        _set(["nodes", "notify", "config", "url"], "{{ credentials[env.WHICH].url }}"),
        {("invalid_credential", "notify", None, "config.url")},
    ),
    (
        "parent-not-a-loop",
        _add_node(id="inner", type="data.transform", parentId="notify", config={}),
        {("invalid_parent", "inner", None, "parentId")},
    ),
    (
        "parent-missing",
        _add_node(id="inner", type="data.transform", parentId="ghost", config={}),
        {("invalid_parent", "inner", None, "parentId")},
    ),
    (
        "edge-crosses-loop",
        _all(_loop_graph, _add_edge(id="x1", source="keep", target="after")),
        {("edge_crosses_loop", None, "x1", "")},
    ),
    (
        "outside-reads-body-node",
        _all(_loop_graph, _set(["nodes", "after", "config"], {"value": "{{ steps.keep }}"})),
        {("step_not_upstream", "after", None, "config.value")},
    ),
    (
        "body-reads-its-loop",
        _all(_loop_graph, _set(["nodes", "keep", "config"], {"value": "{{ steps.each }}"})),
        {("step_not_upstream", "keep", None, "config.value")},
    ),
    (
        "trigger-in-loop",
        _all(_loop_graph, _add_node(id="t2", type="trigger.manual", parentId="each")),
        {("trigger_in_loop", "t2", None, "parentId")},
    ),
    (
        "empty-loop",
        _add_node(id="each", type="control.loop", config={"items": []}),
        {("empty_loop", "each", None, ""), ("unreachable_node", "each", None, "")},
    ),
    (
        "loops-nested-in-a-circle",
        _all(
            _add_node(id="l1", type="control.loop", parentId="l2", config={"items": []}),
            _add_node(id="l2", type="control.loop", parentId="l1", config={"items": []}),
            _add_node(id="b", type="data.transform", parentId="l1", config={}),
        ),
        {("invalid_parent", "l1", None, "parentId"), ("empty_loop", "l2", None, "")},
    ),
    ("node-not-an-object", lambda g: g["nodes"].append(3), {("invalid_node", None, None, "nodes[4]")}),
    (
        "switch-unknown-case",
        _all(
            _add_node(id="route", type="control.switch", config={"cases": {"high": "trigger.body.p > 5"}}),
            _add_edge(id="s0", source="hook", target="route"),
            _add_edge(id="s1", source="route", sourceHandle="low", target="notify"),
        ),
        {("invalid_handle", None, "s1", "sourceHandle")},
    ),
]


@pytest.mark.parametrize("mutate, expected", [(m, e) for _, m, e in CASES], ids=[name for name, _, _ in CASES])
def test_broken_graph_reports_exactly_its_errors(registry, mutate: Mutation, expected: set) -> None:
    graph = base_graph()
    mutate(graph)
    errors = validate_graph(graph, registry=registry)
    got = {(e.code, e.node_id, e.edge_id, e.path) for e in errors}
    assert got == expected, "\n".join(str(e) for e in errors)
    for error in errors:
        assert error.message and "celpy" not in error.message and "Activation" not in error.message


def test_base_graph_is_valid(registry) -> None:
    assert validate_graph(base_graph(), registry=registry) == []


def test_all_problems_reported_at_once(registry) -> None:
    graph = base_graph()
    node(graph, "notify")["type"] = "nope.nope"
    node(graph, "enrich")["config"]["url"] = "{{ ) }}"
    graph["edges"].append({"id": "z", "source": "ok", "sourceHandle": "maybe", "target": "notify"})
    codes = sorted(e.code for e in validate_graph(graph, registry=registry))
    assert codes == ["expression_syntax", "invalid_handle", "unknown_node_type"]


def test_messages_say_what_to_do(registry) -> None:
    def only(mutate: Mutation) -> GraphError:
        graph = base_graph()
        mutate(graph)
        (error,) = validate_graph(graph, registry=registry)
        return error

    error = only(_set(["nodes", "enrich", "config", "url"], "{{ steps.notify.url }}"))
    assert "node 'enrich' reads steps.notify, but notify does not run before enrich" in error.message
    error = only(_add_edge(id="back", source="notify", target="ok"))
    assert "ok -> enrich -> notify -> ok" in error.message
    error = only(_set(["edges", 1, "sourceHandle"], "yes"))
    assert "'true'" in error.message and "'false'" in error.message
    error = only(_set(["nodes", "notify", "type"], "htp.request"))
    assert "did you mean 'http.request'" in error.message
    error = only(_set(["nodes", "notify", "config", "url"], "{{ base64Encode(env.CHAT) }}"))
    assert "did you mean 'base64_encode'" in error.message


def test_editor_keys_are_ignored(registry) -> None:
    graph = base_graph()
    graph["viewport"] = {"x": 0, "y": 0, "zoom": 1}
    for item in graph["nodes"]:
        item.update(width=150, height=40, selected=True, dragging=False, measured={"width": 150})
    for item in graph["edges"]:
        item.update(animated=True, type="smoothstep", selected=False)
    assert validate_graph(graph, registry=registry) == []


def test_versions_old_and_new_both_validate(registry) -> None:
    graph = base_graph()
    graph["nodes"] += [
        {"id": "old", "type": "demo.echo", "version": 1, "config": {"text": "hi"}},
        {"id": "new", "type": "demo.echo", "config": {"message": "hi"}},
    ]
    graph["edges"] += [{"source": "notify", "target": "old"}, {"source": "notify", "target": "new"}]
    assert validate_graph(graph, registry=registry) == []
    node(graph, "new")["config"] = {"text": "hi"}  # newest is v2: `text` is gone
    assert {(e.code, e.path) for e in validate_graph(graph, registry=registry)} == {
        ("invalid_config", "config.text"),
        ("invalid_config", "config.message"),
    }


def test_template_may_stand_for_any_type(registry) -> None:
    graph = base_graph()
    node(graph, "notify")["config"].update(timeout_seconds="{{ env.TIMEOUT }}", headers="{{ steps.enrich.headers }}")
    assert validate_graph(graph, registry=registry) == []


def test_loop_body_scope(registry) -> None:
    graph = base_graph()
    _loop_graph(graph)
    assert validate_graph(graph, registry=registry) == []
    # body nodes see the loop's ancestors, and a while condition sees the body
    node(graph, "keep")["config"]["value"] = "{{ [steps.fetch, steps.enrich, trigger.body, loop.index] }}"
    node(graph, "each")["config"] = {"mode": "while", "condition": "loop.index < 3 && steps.keep != null"}
    assert validate_graph(graph, registry=registry) == []


def test_switch_cases_are_bare_cel_with_their_own_names(registry) -> None:
    graph = base_graph()
    graph["nodes"].append(
        {"id": "route", "type": "control.switch", "config": {"value": "trigger.body.p", "cases": {"high": "value > 5"}}}
    )
    graph["edges"] += [
        {"source": "hook", "target": "route"},
        {"source": "route", "sourceHandle": "high", "target": "notify"},
    ]
    assert validate_graph(graph, registry=registry) == []
    node(graph, "route")["config"]["cases"] = ["high"]  # list form: literals, not CEL
    assert validate_graph(graph, registry=registry) == []


def test_embedded_graph_is_not_templated(registry) -> None:
    graph = base_graph()
    node(graph, "notify")["config"]["json"] = {"format": "gorax/graph@1", "nodes": [{"x": "{{ ) }}"}]}
    assert validate_graph(graph, registry=registry) == []


@pytest.mark.parametrize("document", [None, [], "graph", 3, {"nodes": "x", "edges": {}}, {"nodes": [{}], "edges": [1]}])
def test_garbage_gives_errors_not_exceptions(registry, document: Any) -> None:
    errors = validate_graph(document, registry=registry)
    assert errors and all(isinstance(e, GraphError) for e in errors)
