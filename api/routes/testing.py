"""The draft's test loop: pinned outputs, test runs (one node, up to a node, all), workflow tests,
and the tenant's requirement that tests pass before publishing."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest, NotFound
from api.limits import check_json_size
from api.prefect import PrefectDep, runs
from api.services import executions, testing
from api.services import workflows as workflow_service
from api.workflow_schemas import StepPublic, StorableJson
from translator.testcases import CaseResult

router = APIRouter(tags=["testing"])
WorkflowId = Path(max_length=64, description="The workflow's id.")
NodeId = Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$", description="The node's id.")


class PinPublic(BaseModel):
    output: Any = None
    source: str
    run_id: str | None = None
    pinned_by: str | None = None
    pinned_at: str | None = None


class PinRequest(BaseModel):
    """A node's output to pin: given (``source: manual``), or taken from a run (``source: run``
    with ``run_id``; ``output`` may then be left out and is read from that run's step)."""

    model_config = ConfigDict(extra="forbid")
    output: StorableJson = Field(default=None, description="The output test runs use instead of running the node.")
    source: Literal["run", "manual"] = "manual"
    run_id: str | None = Field(default=None, max_length=64, description="The run the output came from.")


class TestRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_id: str | None = Field(default=None, max_length=63, description="The node to run (modes node, until).")
    mode: Literal["node", "until", "all"] = Field(
        default="node",
        description="node: this node alone (upstream outputs from pins, else the last run); until: "
        "this node and what leads to it; all: the whole draft. Pins stand in for their nodes.",
    )
    input: StorableJson = Field(
        default=None,
        description="The trigger input. Left out: the trigger input of the workflow's newest run (a test "
        "run, else a completed production run), named by trigger_from.",
    )
    wait: bool = Field(default=True, description="Wait for the result.")
    timeout_seconds: float = Field(default=testing.DEFAULT_WAIT, gt=0, le=600)


class TestRunResult(BaseModel):
    execution_id: str
    status: str
    node_id: str | None
    mode: str
    output: Any = None
    error: str | None = None
    fixtures: list[str] = Field(description="The nodes that took a pin or an earlier output instead of running.")
    last_run: str | None = Field(description="The run whose outputs stood in for unpinned upstream nodes.")
    trigger_from: str | None = Field(
        default=None, description="The run whose trigger input this run was given (no input was sent)."
    )
    steps: list[StepPublic]


class TestsRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] | None = Field(default=None, max_length=200, description="The tests to run (default: all).")
    timeout_seconds: float = Field(default=testing.DEFAULT_WAIT, gt=0, le=600)


class TestsRunResult(BaseModel):
    passed: bool
    total: int
    failed: int
    tests: list[CaseResult]


class TestingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require_passing_tests: bool = Field(description="Publishing refuses a draft whose tests do not all pass.")


async def _workflow(session: Any, principal: Principal, workflow_id: str) -> Any:
    return await workflow_service.get_workflow(
        session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id
    )


@router.get("/workflows/{workflow_id}/pins", response_model=dict[str, PinPublic])
async def list_pins(
    session: TenantSession, workflow_id: str = WorkflowId, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> dict[str, Any]:
    """The draft's pinned outputs by node id."""
    return await testing.pins(await _workflow(session, principal, workflow_id))


@router.put("/workflows/{workflow_id}/pins/{node_id}", response_model=PinPublic)
async def put_pin(
    body: PinRequest,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    node_id: str = NodeId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> Any:
    """Pin a node's output in the draft (422 naming node and field when it does not fit what the
    node returns); editors see it live; publishing never carries it."""
    workflow = await _workflow(session, principal, workflow_id)
    output = body.output
    if body.source == "run":
        if not body.run_id:
            raise BadRequest("a pin from a run needs its run_id", details={"field": "run_id"})
        if "output" not in body.model_fields_set:
            run = await executions.get_run(prefect, tenant_id=workflow.tenant_id, execution_id=body.run_id)
            steps = [s for s in await runs.read_run_steps(prefect, run) if s.node_id == node_id and not s.iteration]
            if not steps or steps[-1].status in ("failed", "skipped", "timed_out", "cancelled"):
                raise NotFound(
                    f"run {body.run_id} has no output of node {node_id!r}",
                    details={"node_id": node_id, "run_id": body.run_id},
                )
            output = steps[-1].output
    check_json_size(output, limit="max_input_bytes", field="output")
    pin = await testing.pin_output(
        session,
        workflow=workflow,
        node_id=node_id,
        output=output,
        source=body.source,
        run_id=body.run_id,
        actor=principal.actor,
        context=context,
    )
    await session.commit()
    return pin


@router.delete("/workflows/{workflow_id}/pins/{node_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pin(
    session: TenantSession,
    context: AuditCtx,
    workflow_id: str = WorkflowId,
    node_id: str = NodeId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> Response:
    """Unpin a node: test runs call it again."""
    workflow = await _workflow(session, principal, workflow_id)
    await testing.unpin(session, workflow=workflow, node_id=node_id, context=context)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/workflows/{workflow_id}/test-runs",
    response_model=TestRunResult,
    responses={202: {"description": "Started (wait: false): {execution_id}"}, 504: {"description": "Still running"}},
)
async def start_test_run(
    body: TestRunRequest,
    session: TenantSession,
    prefect: PrefectDep,
    state: StateDep,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> Any:
    """Run the draft as a test run (tagged gorax:test, outside production lists, analytics and
    quotas): one node, up to a node, or all of it, with pins standing in for their nodes."""
    check_json_size(body.input, limit="max_input_bytes", field="input")
    workflow = await _workflow(session, principal, workflow_id)
    run, given = await testing.test_run(
        prefect,
        workflow=workflow,
        node_id=body.node_id,
        mode=body.mode,
        trigger=body.input,
        trigger_given="input" in body.model_fields_set,
        work_pool=state.settings.work_pool,
    )
    if not body.wait:
        return JSONResponse(
            {"execution_id": str(run.id), "status": "pending", **given}, status_code=status.HTTP_202_ACCEPTED
        )
    detail = await testing.wait_detail(prefect, run.id, body.timeout_seconds)
    return TestRunResult(
        execution_id=str(run.id),
        status=detail["status"],
        node_id=body.node_id,
        mode=body.mode,
        output=detail["output"],
        error=detail["error"],
        fixtures=given["fixtures"],
        last_run=given["last_run"],
        trigger_from=given["trigger_from"],
        steps=[StepPublic(**s) for s in detail["steps"]],
    )


@router.post("/workflows/{workflow_id}/tests/run", response_model=TestsRunResult)
async def run_tests(
    session: TenantSession,
    prefect: PrefectDep,
    state: StateDep,
    body: TestsRunRequest | None = None,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> TestsRunResult:
    """Run the draft's tests (all, or ``ids``), each a test run with its mocks; every assertion
    passes or fails, with actual and expected values for an equality."""
    body = body or TestsRunRequest()
    workflow = await _workflow(session, principal, workflow_id)
    graph = await workflow_service.read_current_graph(workflow)
    results = await testing.run_tests(
        prefect,
        workflow=workflow,
        graph=graph,
        ids=body.ids,
        work_pool=state.settings.work_pool,
        timeout=body.timeout_seconds,
    )
    failed = sum(1 for r in results if not r.passed)
    return TestsRunResult(passed=failed == 0, total=len(results), failed=failed, tests=results)


@router.get("/testing/settings", response_model=TestingSettings)
async def read_testing_settings(
    session: TenantSession, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> TestingSettings:
    """Whether this tenant requires passing tests to publish."""
    required = await testing.requires_passing_tests(session, tenant_id=principal.required_tenant_id())
    return TestingSettings(require_passing_tests=required)


@router.put("/testing/settings", response_model=TestingSettings)
async def update_testing_settings(
    body: TestingSettings,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> TestingSettings:
    """Require (or stop requiring) passing tests to publish (audited)."""
    await testing.set_requirement(
        session, tenant_id=principal.required_tenant_id(), required=body.require_passing_tests, context=context
    )
    await session.commit()
    return body
