"""Node policies on Prefect: retries with growing delays, timeouts, durable resume, sub-workflows."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client

from flows.run_graph import run_graph
from flows.runtime.steps import read_steps
from tests.flows.graphs.conftest import run, task_runs
from tests.flows.graphs.test_semantics import MANUAL, graph, transform
from tests.peers import PeerResponse


async def _states(task_run_id: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_task_run_states(task_run_id)


async def test_retries_with_growing_delays(http_peer) -> None:
    answers = iter([PeerResponse(500), PeerResponse(502), PeerResponse(200, {"ok": 1})])
    http_peer.route("GET", "/flaky", lambda _req: next(answers))
    g = graph(
        [
            MANUAL,
            {
                "id": "call",
                "type": "http.request",
                "config": {"url": f"{http_peer.url}/flaky"},
                "retry": {"attempts": 3, "delay_seconds": 0.2, "backoff": "exponential"},
            },
        ],
        [("start", "call")],
    )
    state, flow_run_id = await run(g)
    assert await state.result() == {"status": 200, "headers": (await state.result())["headers"], "body": {"ok": 1}}
    assert len(http_peer.received("GET", "/flaky")) == 3
    step = next(s for s in await read_steps(flow_run_id) if s.node_id == "call")
    assert step.attempts == 3 and step.status == "completed"
    # Each attempt is kept: its outcome, masked error, start and duration.
    history = step.attempt_history
    assert [(a.attempt, a.status) for a in history] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert "answered 500" in history[0].error and "answered 502" in history[1].error
    assert history[2].error is None
    assert history[0].started_at < history[1].started_at < history[2].started_at
    assert all(a.duration_ms is not None and a.duration_ms >= 0 for a in history)
    # The delays Prefect scheduled: each AwaitingRetry state is scheduled later than the last.
    call_run = next(tr for tr in await task_runs(flow_run_id, 2) if tr.name == "call")
    waits = [
        (s.state_details.scheduled_time - s.timestamp).total_seconds()
        for s in await _states(call_run.id)
        if s.name == "AwaitingRetry"
    ]
    assert len(waits) == 2 and waits[1] > waits[0] > 0.1


async def test_timeout_ends_the_node_timed_out() -> None:
    g = graph(
        [
            MANUAL,
            {"id": "wait", "type": "control.delay", "config": {"seconds": 30}, "timeout_seconds": 0.5},
            transform("after", "never"),
        ],
        [("start", "wait"), ("wait", "after")],
    )
    state, flow_run_id = await run(g)
    assert state.is_failed() and "node 'wait'" in state.message
    runs = {tr.name: tr.state for tr in await task_runs(flow_run_id, 2)}
    assert runs["wait"].name == "TimedOut"
    assert "after" not in runs
    step = next(s for s in await read_steps(flow_run_id) if s.node_id == "wait")
    assert step.status == "timed_out" and step.error["node_id"] == "wait"
    [attempt] = step.attempt_history
    assert attempt.status == "timed_out" and "exceeded timeout of 0.5" in attempt.error
    assert attempt.duration_ms >= 400


async def test_each_attempt_cut_off_by_the_timeout_reads_timed_out() -> None:
    g = graph(
        [
            MANUAL,
            {
                "id": "wait",
                "type": "control.delay",
                "config": {"seconds": 30},
                "timeout_seconds": 0.3,
                "retry": {"attempts": 1, "delay_seconds": 0},
            },
        ],
        [("start", "wait")],
    )
    state, flow_run_id = await run(g)
    assert state.is_failed()
    step = next(s for s in await read_steps(flow_run_id) if s.node_id == "wait")
    assert step.status == "timed_out" and step.attempts == 2
    assert [a.status for a in step.attempt_history] == ["timed_out", "timed_out"]
    assert "timeout of 0.3 seconds" in step.attempt_history[0].error
    assert "exceeded timeout of 0.3" in step.attempt_history[1].error


async def test_side_effect_once_when_the_flow_body_runs_twice(http_peer) -> None:
    """A flow retry re-runs the body in the same flow run: completed nodes come from their cache."""
    outcomes = iter([PeerResponse(500), PeerResponse(200, {"fine": True})])
    http_peer.route("POST", "/flaky", lambda _req: next(outcomes))
    g = graph(
        [
            MANUAL,
            {"id": "charge", "type": "http.request", "config": {"method": "POST", "url": f"{http_peer.url}/charge"}},
            {"id": "flaky", "type": "http.request", "config": {"method": "POST", "url": f"{http_peer.url}/flaky"}},
            {"id": "done", "type": "control.output", "config": {"value": "{{ steps.charge.status }}"}},
        ],
        [("start", "charge"), ("charge", "flaky"), ("flaky", "done")],
    )
    state = await run_graph.with_options(retries=1, retry_delay_seconds=0)(graph=g, return_state=True)
    assert state.is_completed(), state.message
    assert await state.result() == 200
    assert len(http_peer.received("POST", "/flaky")) == 2  # the body ran twice
    assert len(http_peer.received("POST", "/charge")) == 1  # the side effect happened once
    flow_run_id = state.state_details.flow_run_id
    # The second body took charge's stored result: no second task run, no second record.
    records = await read_steps(flow_run_id, latest=False)
    by_node: dict[str, list[Any]] = {}
    for record in records:
        by_node.setdefault(record.node_id, []).append(record)
    assert [s.status for s in by_node["start"]] == ["completed"]
    [charge] = by_node["charge"]
    assert charge.status == "completed" and charge.attempts == 1 and charge.input["method"] == "POST"
    assert charge.ended_at > charge.started_at
    # flaky ran in both bodies (it failed the first time): one record each, the last one completed.
    assert [s.status for s in by_node["flaky"]] == ["failed", "completed"]
    names = [tr.name for tr in await task_runs(flow_run_id, 5)]
    assert sorted(names) == ["charge", "done", "flaky", "flaky", "start"]
    latest = {s.node_id: s for s in await read_steps(flow_run_id)}
    assert latest["flaky"].status == "completed" and latest["flaky"].attempts == 1


def _nested(levels: int, max_depth: int = 5) -> dict[str, Any]:
    inner: dict[str, Any] = graph([MANUAL, transform("leaf", "depth reached")], [("start", "leaf")])
    for _ in range(levels):
        inner = graph(
            [MANUAL, {"id": "sub", "type": "control.subworkflow", "config": {"graph": inner, "max_depth": max_depth}}],
            [("start", "sub")],
        )
    return inner


async def test_subworkflow_inline_and_depth_limit() -> None:
    state, _ = await run(_nested(2))
    assert state.is_completed(), state.message
    assert await state.result() == "depth reached"
    state, _ = await run(_nested(3, max_depth=2))
    assert state.is_failed()
    assert "nest too deep" in state.message and "max_depth is 2" in state.message


async def test_run_timeout_stops_the_run() -> None:
    g = graph(
        [MANUAL, {"id": "wait", "type": "control.delay", "config": {"seconds": 60}}, transform("after", "x")],
        [("start", "wait"), ("wait", "after")],
        timeout_seconds=1,
    )
    state, flow_run_id = await run(g)
    assert state.is_failed() and "exceeded its timeout of 1" in state.message
    assert "after" not in {s.node_id for s in await read_steps(flow_run_id)}


async def test_a_tenant_variable_that_is_not_defined_fails_the_run_despite_on_error(http_peer) -> None:
    """``on_error`` covers a node's work (a service that fails), not a run whose variables are wrong:
    a check reading ``env.SERVICE_URL`` of a tenant without it failed, continued, and the run
    completed with ``{"healthy": 0}``."""
    http_peer.route("GET", "/health", PeerResponse(503))
    g = graph(
        [
            MANUAL,
            {
                "id": "check",
                "type": "http.request",
                "config": {"url": "{{ env.SERVICE_URL }}/health"},
                "on_error": "continue",
            },
            transform("summary", "{{ {'healthy': has(steps.check.error) ? 0 : 1} }}"),
        ],
        [("start", "check"), ("check", "summary")],
    )
    state, flow_run_id = await run(g, tenant="tenant-without-variables")
    assert state.is_failed(), state
    assert "node 'check'" in state.message and "env has no key 'SERVICE_URL'" in state.message
    step = next(s for s in await read_steps(flow_run_id) if s.node_id == "check")
    assert step.status == "failed"
    assert "summary" not in {s.node_id for s in await read_steps(flow_run_id)}

    # A service that fails is still the node's own failure: on_error: continue goes on.
    state, _ = await run(g, env={"SERVICE_URL": http_peer.url})
    assert state.is_completed() and await state.result() == {"healthy": 0}
