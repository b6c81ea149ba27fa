"""GRAPH_FORMAT semantics at run time: dead paths, routing, errors, merges, loops, disabled nodes."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

import flows.variables
from flows.runtime.steps import read_steps
from flows.settings import get_settings
from tests.flows.graphs.conftest import run, task_runs
from tests.peers import PeerResponse


def graph(nodes: list[dict[str, Any]], edges: list[tuple], **settings: Any) -> dict[str, Any]:
    """A graph from short node and edge lists: edges are (source, target[, handle])."""
    return {
        "format": "gorax/graph@1",
        "name": "t",
        "settings": settings,
        "nodes": [{"config": {}, **n} for n in nodes],
        "edges": [{"source": e[0], "target": e[1], **({"sourceHandle": e[2]} if len(e) > 2 else {})} for e in edges],
    }


MANUAL = {"id": "start", "type": "trigger.manual"}


def transform(node_id: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "data.transform", "config": {"value": value}, **extra}


async def test_condition_routes_and_dead_path_is_skipped(http_peer) -> None:
    g = graph(
        [
            MANUAL,
            {"id": "ok", "type": "control.condition", "config": {"expression": "trigger.n > 1"}},
            transform("yes", "big {{ trigger.n }}"),
            {"id": "call", "type": "http.request", "name": "Call peer", "config": {"url": f"{http_peer.url}/no"}},
            transform("after_call", "{{ steps.call.status }}"),
            {
                "id": "done",
                "type": "control.output",
                "config": {"value": {"yes": "{{ steps.yes }}", "called": "{{ has(steps.call) }}"}},
            },
        ],
        [
            ("start", "ok"),
            ("ok", "yes", "true"),
            ("ok", "call", "false"),
            ("call", "after_call"),
            ("yes", "done"),
            ("after_call", "done"),
        ],
    )
    state, flow_run_id = await run(g, trigger={"n": 5})
    assert await state.result() == {"yes": "big 5", "called": False}
    assert http_peer.received() == []
    runs = {tr.name: tr.state for tr in await task_runs(flow_run_id, 6)}
    assert runs["Call peer"].type.value == "COMPLETED" and runs["Call peer"].name == "Skipped"
    assert runs["after_call"].name == "Skipped"  # skipping propagates
    assert runs["yes"].name == "Completed" and runs["done"].name == "Completed"
    steps = {s.node_id: s for s in await read_steps(flow_run_id)}
    assert steps["call"].status == "skipped" and steps["ok"].handles == ["true"]


async def test_error_route_and_failure_naming_the_node(http_peer) -> None:
    http_peer.route("GET", "/fail", PeerResponse(500, {"oops": 1}))
    g = graph(
        [
            MANUAL,
            {"id": "call", "type": "http.request", "config": {"url": f"{http_peer.url}/fail"}, "on_error": "route"},
            transform("handled", "{{ steps.call.error.node_id }}"),
            transform("normal", "not reached"),
        ],
        [("start", "call"), ("call", "handled", "error"), ("call", "normal")],
    )
    state, flow_run_id = await run(g)
    assert state.is_completed()
    assert await state.result() == {"handled": "call"}
    runs = {tr.name: tr.state for tr in await task_runs(flow_run_id, 4)}
    assert runs["call"].is_failed() and runs["normal"].name == "Skipped"

    g["nodes"][1]["on_error"] = "fail"
    g["edges"] = [e for e in g["edges"] if e.get("sourceHandle") != "error"]
    g["nodes"] = [n for n in g["nodes"] if n["id"] != "handled"]
    state, _ = await run(g)
    assert state.is_failed()
    assert "node 'call'" in state.message and "500" in state.message


async def test_switch_merge_any_disabled_and_while_loop() -> None:
    g = graph(
        [
            MANUAL,
            {
                "id": "level",
                "type": "control.switch",
                "config": {"cases": {"high": "trigger.n > 10", "mid": "trigger.n > 3"}},
            },
            transform("high", "H"),
            transform("mid", "M"),
            transform("other", "D"),
            {"id": "first", "type": "control.merge", "config": {"mode": "any"}},
            transform("off", "never", disabled=True),
            {
                "id": "count",
                "type": "control.loop",
                "config": {"mode": "while", "condition": "loop.index < 3", "max_iterations": 10},
            },
            transform("sq", "{{ loop.index * loop.index }}", parentId="count"),
            {
                "id": "done",
                "type": "control.output",
                "config": {
                    "value": {"merged": "{{ steps.first }}", "off": "{{ steps.off }}", "squares": "{{ steps.count }}"}
                },
            },
        ],
        [
            ("start", "level"),
            ("level", "high", "high"),
            ("level", "mid", "mid"),
            ("level", "other", "default"),
            ("high", "first"),
            ("mid", "first"),
            ("other", "first"),
            ("first", "off"),
            ("off", "count"),
            ("count", "done"),
        ],
    )
    state, flow_run_id = await run(g, trigger={"n": 5})
    assert state.is_completed(), state.message
    assert await state.result() == {"merged": {"mid": "M"}, "off": {"mid": "M"}, "squares": [0, 1, 4]}
    runs = {tr.name: tr.state.name for tr in await task_runs(flow_run_id, 11)}
    assert runs["off"] == "Disabled" and runs["high"] == "Skipped" and runs["sq [2]"] == "Completed"


async def test_loop_limits_and_expression_errors_name_the_node() -> None:
    g = graph(
        [
            MANUAL,
            {"id": "each", "type": "control.loop", "config": {"items": "{{ trigger.items }}", "max_iterations": 2}},
            transform("inner", "{{ loop.item }}", parentId="each"),
        ],
        [("start", "each")],
    )
    state, _ = await run(g, trigger={"items": [1, 2, 3]})
    assert state.is_failed() and "max_iterations" in state.message and "'each'" in state.message
    state, _ = await run(g, trigger={"nothing": True})
    assert state.is_failed() and "node 'each'" in state.message and "items" in state.message


async def test_two_hundred_nodes() -> None:
    nodes = [MANUAL] + [transform(f"n{i}", f"{{{{ trigger.base + {i} }}}}") for i in range(197)]
    nodes += [
        {"id": "join", "type": "control.merge", "config": {}},
        {"id": "done", "type": "control.output", "config": {"value": "{{ steps.join.size() }}"}},
    ]
    edges = [("start", f"n{i}") for i in range(197)] + [(f"n{i}", "join") for i in range(197)] + [("join", "done")]
    state, flow_run_id = await run(graph(nodes, edges, max_parallel=32), trigger={"base": 1})
    assert state.is_completed(), state.message
    assert await state.result() == 197
    steps = await read_steps(flow_run_id)
    assert len(steps) == 200 and {s.status for s in steps} == {"completed"}
    assert all(s.task_run_id for s in steps)
    # Step records are stored in batches, not one artifact (one API call) per node.

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["gorax-step"])
            )
        )
    assert 1 <= len(artifacts) <= 20, len(artifacts)


async def test_ssrf_guard_and_the_tenant_allow_list(http_peer, monkeypatch) -> None:
    monkeypatch.setenv("GORAX_HTTP_ALLOWED_NETWORKS", "")
    get_settings.cache_clear()
    try:
        g = graph(
            [MANUAL, {"id": "call", "type": "http.request", "config": {"url": f"{http_peer.url}/in"}}],
            [("start", "call")],
        )
        state, _ = await run(g)
        assert state.is_failed() and "node 'call'" in state.message and "loopback" in state.message
        assert http_peer.received() == []
        state, _ = await run(g, allowed_networks=["127.0.0.1/32"])
        assert state.is_completed(), state.message
        assert len(http_peer.received("GET", "/in")) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_the_tenants_variables_are_read_only_for_a_graph_that_reads_env(monkeypatch) -> None:
    reads: list[str] = []

    async def read(tenant_id: str, **_: Any) -> dict[str, Any]:
        reads.append(tenant_id)
        return {"PLACE": "Oslo"}

    monkeypatch.setattr(flows.variables, "read_tenant_variables", read)
    plain = graph([MANUAL, transform("out", "{{ trigger.who }}")], [("start", "out")])
    state, _ = await run(plain, trigger={"who": "Ada"}, tenant="t-env")
    assert state.is_completed(), state.message
    assert await state.result() == "Ada" and reads == []
    in_loop = graph(
        [
            MANUAL,
            {"id": "each", "type": "control.loop", "config": {"items": "{{ trigger.items }}"}},
            transform("inner", "{{ loop.item }} in {{ env.PLACE }}", parentId="each"),
        ],
        [("start", "each")],
    )
    state, _ = await run(in_loop, trigger={"items": ["a"]}, tenant="t-env")
    assert state.is_completed(), state.message
    assert await state.result() == ["a in Oslo"] and reads == ["t-env"]
    # Given an env (the API's runs, a parent's sub-workflow), nothing is read either way.
    state, _ = await run(in_loop, trigger={"items": ["b"]}, tenant="t-env", env={"PLACE": "Rome"})
    assert await state.result() == ["b in Rome"] and reads == ["t-env"]
