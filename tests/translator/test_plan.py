"""compile_graph: the Plan the runtime executes."""

from __future__ import annotations

import pickle

import pytest

from tests.translator.conftest import Http, base_graph, loop_graph, node
from translator import (
    ConfigError,
    ExpressionError,
    Graph,
    GraphValidationError,
    PlanEdge,
    compile_graph,
)


def test_plan_of_a_straight_graph(registry) -> None:
    plan = compile_graph(base_graph(), registry=registry)
    assert plan.name == "notify" and plan.settings.max_parallel == 16
    assert plan.order == ("hook", "ok", "enrich", "notify")
    assert plan.triggers == ("hook",) and plan.last_nodes == ("notify",) and plan.bodies == {}
    ok = plan.nodes["ok"]
    assert ok.outgoing == (PlanEdge("e2", "ok", "enrich", "true"),) and ok.incoming[0].source == "hook"
    notify = plan.nodes["notify"]
    assert notify.name == "Tell the team" and plan.nodes["ok"].name == "ok"
    assert notify.node_type is Http and notify.version == 1 and notify.on_error == "fail"
    assert notify.retry is not None and notify.retry.delays() == [1, 2, 4] and notify.timeout_seconds == 10
    assert notify.credential_refs == {"chat"} and plan.nodes["enrich"].credential_refs == {"github"}
    assert plan.nodes["hook"].credential_refs == frozenset()
    assert plan.credential_refs == {"chat", "github"}
    assert plan.graph.nodes[3].id == "notify"


def test_render_config_resolves_templates_then_validates(registry) -> None:
    notify = compile_graph(base_graph(), registry=registry).nodes["notify"]
    scope = {
        "env": {"CHAT": "http://127.0.0.1:1/hook"},
        "steps": {"enrich": {"body": {"name": "gorax"}}},
        "credentials": {"chat": {"token": "t0k"}},
    }
    config = notify.render_config(scope)
    assert isinstance(config, Http.Config)
    assert config.url == "http://127.0.0.1:1/hook" and config.json_body == {"text": "gorax ok"}
    assert config.headers == {"Authorization": "Bearer t0k"}
    assert notify.config["json"] == {"text": "{{ steps.enrich.body.name }} ok"}  # the plan is untouched


def test_render_config_errors_name_node_and_path(registry) -> None:
    notify = compile_graph(base_graph(), registry=registry).nodes["notify"]
    with pytest.raises(ExpressionError) as caught:
        notify.render_config(
            {"env": {"CHAT": "x"}, "steps": {"enrich": {"body": {}}}, "credentials": {"chat": {"token": "t"}}}
        )
    assert str(caught.value) == (
        "node 'notify' config.json.text: {{ steps.enrich.body.name }}: steps.enrich.body has no key 'name'"
    )
    graph = base_graph()
    node(graph, "notify")["config"]["timeout_seconds"] = "{{ env.TIMEOUT }}"
    notify = compile_graph(graph, registry=registry).nodes["notify"]
    scope = {
        "env": {"CHAT": "x", "TIMEOUT": "soon"},
        "steps": {"enrich": {"body": {"name": "n"}}},
        "credentials": {"chat": {"token": "t"}},
    }
    with pytest.raises(ConfigError) as config_error:
        notify.render_config(scope)
    assert config_error.value.node_id == "notify"
    assert [e.path for e in config_error.value.errors] == ["config.timeout_seconds"]
    assert "(got a string)" in str(config_error.value) and "soon" not in str(config_error.value)
    scope["env"]["TIMEOUT"] = 12.5
    assert notify.render_config(scope).timeout_seconds == 12.5


def test_evaluate_bare_cel_fields(registry) -> None:
    plan = compile_graph(base_graph(), registry=registry)
    assert plan.nodes["ok"].evaluate("expression", {"trigger": {"body": {"status": "success"}}}) is True
    assert plan.nodes["hook"].evaluate("config.filter", {"trigger": {"body": {"env": "dev"}}}) is False
    with pytest.raises(ExpressionError) as caught:
        plan.nodes["ok"].evaluate("expression", {"trigger": {"body": {}}})
    assert str(caught.value) == (
        "node 'ok' config.expression: trigger.body.status == 'success': trigger.body has no key 'status'"
    )
    with pytest.raises(LookupError, match="no bare-CEL field 'url'"):
        plan.nodes["notify"].evaluate("url", {})


def test_loop_bodies_are_sub_plans(registry) -> None:
    plan = compile_graph(loop_graph(), registry=registry)
    assert plan.order == ("hook", "ok", "enrich", "notify", "each", "after")
    body = plan.bodies["each"]
    assert body.order == ("fetch", "keep") and body.last_nodes == ("keep",) and body.triggers == ()
    assert body.nodes["fetch"].parent_id == "each" and "fetch" not in plan.nodes
    assert plan.find("keep") is body.nodes["keep"]
    assert plan.nodes["each"].render_config({"steps": {"enrich": {"body": {"items": [{"url": "u"}]}}}}).items == [
        {"url": "u"}
    ]
    assert (
        body.nodes["fetch"].render_config({"loop": {"item": {"url": "http://127.0.0.1:2"}}}).url == "http://127.0.0.1:2"
    )


def test_nested_loops(registry) -> None:
    graph = loop_graph()
    graph["nodes"] += [
        {"id": "inner", "type": "control.loop", "parentId": "each", "config": {"items": "{{ loop.item.parts }}"}},
        {
            "id": "part",
            "type": "data.transform",
            "parentId": "inner",
            "config": {"value": "{{ [loop.item, steps.fetch.status, steps.enrich.status] }}"},
        },
    ]
    graph["edges"].append({"source": "fetch", "target": "inner"})
    plan = compile_graph(graph, registry=registry)
    assert plan.bodies["each"].bodies["inner"].order == ("part",)
    assert set(plan.bodies["each"].last_nodes) == {"keep", "inner"}


def test_invalid_graph_raises_with_every_error(registry) -> None:
    graph = base_graph()
    graph["edges"].append({"source": "notify", "target": "ok"})
    node(graph, "enrich")["type"] = "nope"
    with pytest.raises(GraphValidationError) as caught:
        compile_graph(graph, registry=registry)
    assert sorted(e.code for e in caught.value.errors) == ["cycle", "unknown_node_type"]
    assert "unknown node type 'nope'" in str(caught.value)


def test_accepts_a_graph_model_and_round_trips(registry) -> None:
    model = Graph.model_validate(base_graph())
    assert compile_graph(model, registry=registry).order == ("hook", "ok", "enrich", "notify")
    assert model.to_json()["edges"][1]["sourceHandle"] == "true"
    assert Graph.model_validate(model.to_json()) == model


def test_disabled_and_error_routes(registry) -> None:
    graph = base_graph()
    node(graph, "enrich").update(on_error="route", disabled=True)
    graph["nodes"].append({"id": "fallback", "type": "data.transform", "config": {"value": "{{ steps.enrich }}"}})
    graph["edges"].append({"id": "err", "source": "enrich", "sourceHandle": "error", "target": "fallback"})
    plan = compile_graph(graph, registry=registry)
    enrich = plan.nodes["enrich"]
    assert enrich.disabled and enrich.on_error == "route"
    assert {(e.target, e.handle) for e in enrich.outgoing} == {("notify", None), ("fallback", "error")}
    assert set(plan.last_nodes) == {"notify", "fallback"}


def test_switch_cases_see_the_names_the_runtime_binds(registry) -> None:
    graph = base_graph()
    graph["nodes"].append(
        {
            "id": "route",
            "type": "control.switch",
            "config": {"value": "trigger.body.p", "cases": {"high": "value > 5", "v1.2": "value == 1"}},
        }
    )
    graph["edges"] += [
        {"source": "hook", "target": "route"},
        {"source": "route", "sourceHandle": "high", "target": "notify"},
    ]
    route = compile_graph(graph, registry=registry).nodes["route"]
    value = route.evaluate("value", {"trigger": {"body": {"p": 7}}})
    assert route.evaluate("cases.high", {"trigger": {}, "value": value}) is True
    assert route.evaluate("cases.v1.2", {"value": 1}) is True
    with pytest.raises(ExpressionError, match="'value' is not defined"):
        route.evaluate("cases.high", {"trigger": {}})


def test_errors_survive_pickling(registry) -> None:
    """Prefect stores a failed task's exception: every field must come back."""
    graph = base_graph()
    graph["edges"].append({"source": "notify", "target": "ok"})
    with pytest.raises(GraphValidationError) as invalid:
        compile_graph(graph, registry=registry)
    notify = compile_graph(base_graph(), registry=registry).nodes["notify"]
    with pytest.raises(ExpressionError) as expression:
        notify.render_config({})
    node(graph := base_graph(), "notify")["config"]["timeout_seconds"] = "{{ env.T }}"
    with pytest.raises(ConfigError) as config:
        compile_graph(graph, registry=registry).nodes["notify"].render_config(
            {
                "env": {"CHAT": "x", "T": "soon"},
                "steps": {"enrich": {"body": {"name": "n"}}},
                "credentials": {"chat": {"token": "t"}},
            }
        )
    for error in (invalid.value, expression.value, config.value):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert pickle.loads(pickle.dumps(invalid.value)).errors == invalid.value.errors
    assert pickle.loads(pickle.dumps(expression.value)).node_id == "notify"
    assert pickle.loads(pickle.dumps(config.value)).errors == config.value.errors
