"""The draft's test loop: pinned outputs, test runs of the draft (one node, up to a node, all),
workflow tests, and the publish gate of tenants that require passing tests.

A test run is a flow run of the tenant's drafts deployment (``<tenant>--drafts``) with the draft
graph in its parameters and ``fixtures`` (pins, mocks, the last run's outputs) for the nodes that
must not run. It carries the tags ``gorax:test``, ``test-tenant:<id>`` and
``test-workflow:<id>``, never the production ``tenant:``/``workflow:`` tags, so production lists,
analytics, quotas and alerts leave it out. It runs with the tenant's variables and credentials
like any run. Every function takes ``tenant_id`` keyword-only.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.collab import read_pins, write_pin
from api.errors import BadRequest, Conflict, GatewayTimeout, NotFound, ValidationFailed
from api.models.identity import Tenant
from api.models.workflows import Workflow
from api.prefect import FlowRun, PrefectClient, deployments, runs
from api.prefect.variables import read_tenant_variables
from api.services import audit
from api.services.audit import AuditContext
from api.services.executions import execution_detail, run_filter, run_output, status_of
from api.services.publishing import compile_checked
from api.services.workflows import read_current_graph
from flows import TEST_TAG, tenant_test_tag, workflow_test_tag
from translator import Plan
from translator.nodetypes import get_registry
from translator.testcases import CaseResult, WorkflowTest, check_tests, judge

Mode = Literal["node", "until", "all"]
#: How long a test run may take when the caller waits for it, by default (seconds).
DEFAULT_WAIT = 60.0
#: Step statuses whose output stands for the node in a later test run.
_USABLE = ("completed", "cached", "pinned", "disabled")

# Drafts deployments known in this process: (tenant, work pool) -> deployment id; one request at a
# time makes a tenant's (tests run at once would otherwise all create it).
_drafts: dict[tuple[str, str], UUID] = {}
_drafts_locks: dict[tuple[str, str], asyncio.Lock] = {}


# -- pins -------------------------------------------------------------------------------------
def _node(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    for node in graph.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") == node_id:
            return node
    raise NotFound(f"the draft has no node {node_id!r}", details={"node_id": node_id})


def check_output(graph: dict[str, Any], node_id: str, output: Any, *, field: str = "output") -> None:
    """ValidationFailed (422 naming node and field path) when ``output`` does not fit what the
    node type declares it returns; any JSON passes for a type that declares no output shape."""
    node = _node(graph, node_id)
    node_type = get_registry().get(str(node.get("type")), node.get("version"))
    model = node_type.Output if node_type is not None else None
    if model is None:
        return
    try:
        model.model_validate(output)
    except ValidationError as exc:
        problems = []
        for item in exc.errors(include_url=False):
            path = ".".join([field, *(str(part) for part in item.get("loc", ()))])
            problems.append({"node_id": node_id, "path": path, "message": item.get("msg", "invalid value")})
        first = problems[0]
        raise ValidationFailed(
            f"node '{node_id}': {first['path']}: {first['message']} (what {node.get('type')} returns)",
            details={"node_id": node_id, "errors": problems},
        ) from None


async def pins(workflow: Workflow) -> dict[str, dict[str, Any]]:
    """The draft's pins by node id."""
    return await read_pins(workflow.id, tenant_id=workflow.tenant_id)


async def pin_output(
    session: AsyncSession,
    *,
    workflow: Workflow,
    node_id: str,
    output: Any,
    source: Literal["run", "manual"],
    run_id: str | None,
    actor: str | None,
    context: AuditContext,
) -> dict[str, Any]:
    """Pin ``node_id``'s output in the draft (checked against the node's output shape)."""
    graph = await read_current_graph(workflow)
    check_output(graph, node_id, output)
    pin: dict[str, Any] = {
        "output": output,
        "source": source,
        "pinned_by": actor,
        "pinned_at": datetime.now(UTC).isoformat(),
    }
    if run_id:
        pin["run_id"] = run_id
    try:
        await write_pin(workflow.id, node_id, pin, tenant_id=workflow.tenant_id, session=session)
    except ValueError as exc:
        raise BadRequest(f"the pin cannot be stored: {exc}", details={"node_id": node_id}) from exc
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="workflow.pin",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={"node_id": node_id, "source": source, "run_id": run_id},
    )
    return pin


async def unpin(session: AsyncSession, *, workflow: Workflow, node_id: str, context: AuditContext) -> None:
    """Remove ``node_id``'s pin; NotFound when it has none."""
    if node_id not in await pins(workflow):
        raise NotFound(f"node {node_id!r} has no pinned output", details={"node_id": node_id})
    await write_pin(workflow.id, node_id, None, tenant_id=workflow.tenant_id, session=session)
    await audit.record(
        session,
        tenant_id=workflow.tenant_id,
        action="workflow.unpin",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={"node_id": node_id},
    )


# -- test runs --------------------------------------------------------------------------------
def _ancestors(plan: Plan, node_id: str) -> set[str]:
    """Every node upstream of ``node_id`` (loop containers of a body node included)."""
    graph_nodes = {node.id: node for node in plan.walk()}
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = graph_nodes.get(stack.pop())
        if current is None:
            continue
        sources = [edge.source for edge in current.incoming]
        if current.parent_id:
            sources.append(current.parent_id)
        for source in sources:
            if source not in seen:
                seen.add(source)
                stack.append(source)
    return seen


async def newest_run(client: PrefectClient, *, tenant_id: str, workflow_id: str) -> FlowRun | None:
    """The newest finished run of the workflow: a test run, else a completed production run."""
    tests = runs.run_filter(
        tags=[tenant_test_tag(tenant_id), workflow_test_tag(workflow_id)], state_types=["COMPLETED", "FAILED"]
    )
    found = await runs.read_runs(client, tests, limit=1)
    if not found:
        found = await runs.read_runs(
            client, run_filter(tenant_id=tenant_id, workflow_id=workflow_id, status="completed"), limit=1
        )
    return found[0] if found else None


async def outputs_of(client: PrefectClient, run: FlowRun) -> dict[str, Any]:
    """The outputs of the nodes that completed in ``run``, by node id."""
    outputs = {}
    for record in await runs.read_run_steps(client, run):
        if not record.iteration and record.status in _USABLE:
            outputs[record.node_id] = record.output
    return outputs


async def _drafts_deployment(client: PrefectClient, *, tenant_id: str, work_pool: str, fresh: bool = False) -> str:
    key = (tenant_id, work_pool)
    known = _drafts.get(key)
    if known is not None and not fresh:
        return str(known)
    async with _drafts_locks.setdefault(key, asyncio.Lock()):
        if _drafts.get(key) is None or (fresh and _drafts.get(key) == known):
            try:
                _drafts[key] = await deployments.deploy_drafts(client, tenant=tenant_id, work_pool=work_pool)
            except deployments.WorkPoolMissing as exc:
                raise Conflict(str(exc), details={"work_pool": work_pool}) from exc
    return str(_drafts[key])


async def start_test_run(
    client: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    graph: dict[str, Any],
    trigger: Any,
    fixtures: dict[str, dict[str, Any]],
    only: list[str] | None,
    work_pool: str,
) -> FlowRun:
    """A flow run of the tenant's drafts deployment running ``graph`` with ``fixtures``."""
    parameters = {
        "graph": graph,
        "trigger": trigger,
        "env": await read_tenant_variables(client, tenant_id),
        "tenant": tenant_id,
        "workflow_id": workflow_id,
        "workflow_version": None,
        "fixtures": fixtures,
        "only": only,
    }
    tags = [TEST_TAG, tenant_test_tag(tenant_id), workflow_test_tag(workflow_id), "trigger:test"]
    deployment = await _drafts_deployment(client, tenant_id=tenant_id, work_pool=work_pool)
    try:
        return await runs.start_run(client, deployment, parameters=parameters, tags=tags)
    except runs.DeploymentGone:  # deleted behind this process's back: made again, once
        deployment = await _drafts_deployment(client, tenant_id=tenant_id, work_pool=work_pool, fresh=True)
        return await runs.start_run(client, deployment, parameters=parameters, tags=tags)


async def test_run(
    client: PrefectClient,
    *,
    workflow: Workflow,
    node_id: str | None,
    mode: Mode,
    trigger: Any,
    work_pool: str,
    trigger_given: bool = True,
) -> tuple[FlowRun, dict[str, Any]]:
    """Start a test run of the draft: ``node`` runs ``node_id`` alone (upstream outputs from pins,
    else the last run), ``until`` runs it and what leads to it (pins stand in), ``all`` the whole
    draft (pins stand in). Answers the run and what it was given.

    Without a trigger input (``trigger_given`` false) the run gets the one the newest run of the
    workflow had (:func:`newest_run`), as its nodes' outputs do: ``trigger.*`` in a node's
    templates reads what it read then (``trigger_from`` names that run)."""
    newest: FlowRun | None = None  # read once, when the input or an upstream output needs it
    trigger_from: str | None = None
    if not trigger_given:
        newest = await newest_run(client, tenant_id=workflow.tenant_id, workflow_id=workflow.id)
        if newest is not None:
            trigger, trigger_from = (newest.parameters or {}).get("trigger"), str(newest.id)
    graph = await read_current_graph(workflow)
    plan = compile_checked(graph)
    pinned = await pins(workflow)
    if mode != "all":
        if not node_id:
            raise BadRequest(f"mode {mode!r} needs a node_id", details={"field": "node_id"})
        if plan.find(node_id) is None:
            raise ValidationFailed(
                f"the draft has no node {node_id!r}", details={"node_id": node_id, "field": "node_id"}
            )
    fixtures: dict[str, dict[str, Any]] = {}
    only: list[str] | None = None
    last_run: str | None = None
    if mode == "all":
        fixtures = {nid: {"output": pin.get("output")} for nid, pin in pinned.items() if plan.find(nid) is not None}
    else:
        assert node_id is not None
        upstream = _ancestors(plan, node_id)
        only = sorted(upstream | {node_id})
        fixtures = {nid: {"output": pinned[nid].get("output")} for nid in upstream if nid in pinned}
        if mode == "node":
            missing = upstream - fixtures.keys()
            if missing and trigger_given:
                newest = await newest_run(client, tenant_id=workflow.tenant_id, workflow_id=workflow.id)
            if missing and newest is not None:
                last_run, outputs = str(newest.id), await outputs_of(client, newest)
                fixtures.update({nid: {"output": outputs[nid]} for nid in missing if nid in outputs})
    run = await start_test_run(
        client,
        tenant_id=workflow.tenant_id,
        workflow_id=workflow.id,
        graph=_without_tests(graph),
        trigger=trigger,
        fixtures=fixtures,
        only=only,
        work_pool=work_pool,
    )
    return run, {"fixtures": sorted(fixtures), "last_run": last_run, "trigger_from": trigger_from}


def _without_tests(graph: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in graph.items() if key != "tests"}


async def wait_detail(client: PrefectClient, run_id: UUID, timeout: float) -> dict[str, Any]:
    """The run's detail (output, steps) once it is final; GatewayTimeout naming it otherwise."""
    run = await runs.wait_for_final(client, run_id, timeout)
    if run is None:
        raise GatewayTimeout(
            f"test run {run_id} did not finish within {timeout:g} seconds", details={"execution_id": str(run_id)}
        )
    return await execution_detail(client, run, prefect_api_url="")


# -- workflow tests ---------------------------------------------------------------------------
def tests_of(graph: dict[str, Any]) -> list[WorkflowTest]:
    """The draft's tests; ValidationFailed naming each problem when they are malformed."""
    node_ids = {n.get("id") for n in graph.get("nodes") or [] if isinstance(n, dict)}
    problems = check_tests(graph.get("tests"), node_ids={i for i in node_ids if isinstance(i, str)})
    if problems:
        raise ValidationFailed(
            f"the tests have {len(problems)} problem(s)", details={"errors": [p.to_dict() for p in problems]}
        )
    return [WorkflowTest.model_validate(item) for item in graph.get("tests") or []]


def _steps_of(records: list[Any]) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for record in records:
        if record.iteration or record.status == "skipped":
            continue
        steps[record.node_id] = record.output if record.error is None else {"error": record.error}
    return steps


async def run_case(
    client: PrefectClient,
    *,
    workflow_id: str,
    tenant_id: str,
    graph: dict[str, Any],
    test: WorkflowTest,
    work_pool: str,
    timeout: float,
) -> CaseResult:
    """Run one test as a test run of ``graph`` and judge its assertions."""
    began = time.monotonic()
    run = await start_test_run(
        client,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        graph=graph,
        trigger=test.input,
        fixtures={node_id: mock.fixture() for node_id, mock in test.mocks.items()},
        only=None,
        work_pool=work_pool,
    )
    final = await runs.wait_for_final(client, run.id, timeout)
    if final is None:
        return CaseResult(
            id=test.id,
            name=test.label,
            passed=False,
            status="timed_out",
            execution_id=str(run.id),
            error=f"the test run did not finish within {timeout:g} seconds",
        )
    status = status_of(final.state)
    steps = _steps_of(await runs.read_run_steps(client, final))
    result = await run_output(final) if status == "completed" else None
    outcomes = judge(test, trigger=test.input, steps=steps, result=result, status=status)
    error = final.state.message if status != "completed" and final.state is not None else None
    return CaseResult(
        id=test.id,
        name=test.label,
        passed=all(o.passed for o in outcomes) and (status == "completed" or bool(outcomes)),
        status=status,
        execution_id=str(final.id),
        assertions=outcomes,
        error=error,
        duration_ms=int((time.monotonic() - began) * 1000),
    )


async def run_tests(
    client: PrefectClient,
    *,
    workflow: Workflow,
    graph: dict[str, Any],
    ids: list[str] | None,
    work_pool: str,
    timeout: float = DEFAULT_WAIT,
) -> list[CaseResult]:
    """Run the graph's tests (all, or those named in ``ids``) at once, each a test run."""
    compile_checked(graph)
    tests = tests_of(graph)
    if ids is not None:
        known = {t.id for t in tests}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise NotFound(f"the draft has no test {unknown[0]!r}", details={"test_ids": unknown})
        tests = [t for t in tests if t.id in ids]
    runnable = _without_tests(graph)
    return list(
        await asyncio.gather(
            *(
                run_case(
                    client,
                    workflow_id=workflow.id,
                    tenant_id=workflow.tenant_id,
                    graph=runnable,
                    test=test,
                    work_pool=work_pool,
                    timeout=timeout,
                )
                for test in tests
            )
        )
    )


# -- the publish gate ------------------------------------------------------------------------
async def requires_passing_tests(session: AsyncSession, *, tenant_id: str) -> bool:
    tenant = await session.get(Tenant, tenant_id)
    return bool(tenant and tenant.require_passing_tests)


async def set_requirement(session: AsyncSession, *, tenant_id: str, required: bool, context: AuditContext) -> None:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    before = tenant.require_passing_tests
    tenant.require_passing_tests = required
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="tenant.testing.update",
        context=context,
        resource_type="tenant",
        resource_id=tenant_id,
        details={"require_passing_tests": {"before": before, "after": required}},
    )


async def publish_gate(
    session: AsyncSession,
    client: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    context: AuditContext,
    work_pool: str,
) -> None:
    """For a tenant that requires passing tests: run the draft's tests; when one fails (or the
    draft has none) the refusal is audited (committed) and Conflict (409) names the tests."""
    if not await requires_passing_tests(session, tenant_id=tenant_id):
        return
    workflow = await session.get(Workflow, workflow_id)
    if workflow is None or workflow.tenant_id != tenant_id:
        return  # publishing answers NotFound itself
    graph = await read_current_graph(workflow)
    compile_checked(graph)
    results = await run_tests(client, workflow=workflow, graph=graph, ids=None, work_pool=work_pool)
    failing = [r for r in results if not r.passed]
    if results and not failing:
        return
    reason = (
        "the draft has no tests; this tenant requires passing tests to publish"
        if not results
        else f"{len(failing)} of {len(results)} test(s) fail: " + ", ".join(r.id for r in failing)
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.publish_refused",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        details={"reason": reason, "failing": [r.id for r in failing]},
    )
    await session.commit()
    raise Conflict(
        f"publishing refused: {reason}",
        details={
            "workflow_id": workflow_id,
            "failing_tests": [
                {"id": r.id, "name": r.name, "status": r.status, "execution_id": r.execution_id} for r in failing
            ],
        },
    )


__all__ = [
    "DEFAULT_WAIT",
    "check_output",
    "newest_run",
    "outputs_of",
    "pin_output",
    "pins",
    "publish_gate",
    "run_tests",
    "start_test_run",
    "test_run",
    "unpin",
]
