"""Executions: run a workflow, list and read runs with their steps, cancel, retry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import JSONResponse

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest, Conflict
from api.limits import check_json_size
from api.prefect import PrefectDep
from api.schemas import Page
from api.services import audit, quotas
from api.services import executions as runs
from api.services import workflows as workflow_service
from api.services.human_tasks import cancel_for_run as cancel_human_tasks
from api.workflow_schemas import (
    ExecuteRequest,
    ExecutionDetail,
    ExecutionResult,
    ExecutionStarted,
    ExecutionSummary,
    StepPublic,
)

router = APIRouter(tags=["executions"])
ExecutionId = Path(max_length=64, description="The execution (Prefect flow run) id.")


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise BadRequest(f"{name} needs a timezone", details={"field": name})


@router.post(
    "/workflows/{workflow_id}/execute",
    response_model=ExecutionResult,
    status_code=status.HTTP_200_OK,
    responses={
        202: {"model": ExecutionStarted},
        504: {"description": "Still running"},
        429: {"description": "A quota is used up (QUOTA_EXCEEDED: runs_per_month) or a rate limit"},
    },
)
async def execute_workflow(
    body: ExecuteRequest,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    state: StateDep,
    workflow_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> Any:
    """Run the published workflow: 202 with the id, or with ``wait`` 200 with output and steps
    (504 naming the execution when it does not finish within ``timeout_seconds``)."""
    tenant_id = principal.required_tenant_id()
    check_json_size(body.input, limit="max_input_bytes", field="input")
    workflow = await workflow_service.get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    if workflow.status == "archived" or not workflow.deployment_id:
        raise Conflict(
            "the workflow has no published, deployed version to run",
            details={"workflow_id": workflow_id, "status": workflow.status},
        )
    graph = None
    if body.version is not None and body.version != workflow.latest_version:
        graph = (
            await workflow_service.get_version(
                session, tenant_id=tenant_id, workflow_id=workflow_id, number=body.version
            )
        ).graph
    await quotas.check_new_run(session, prefect, tenant_id=tenant_id, config=state.config)
    run = await runs.start_run(
        prefect,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        deployment_id=workflow.deployment_id,
        trigger=body.input,
        trigger_type="manual",
        graph=graph,
        version=body.version,
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.execute",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        details={"execution_id": str(run.id), "version": body.version},
    )
    await session.commit()
    if not body.wait:
        return JSONResponse(
            ExecutionStarted(execution_id=str(run.id)).model_dump(), status_code=status.HTTP_202_ACCEPTED
        )
    final = await runs.wait_for_run(prefect, run.id, body.timeout_seconds)
    detail = await runs.execution_detail(prefect, final, prefect_api_url="")
    return ExecutionResult(
        execution_id=str(run.id),
        status=detail["status"],
        output=detail["output"],
        error=detail["error"],
        steps=[StepPublic(**s) for s in detail["steps"]],
    )


@router.get("/executions", response_model=Page[ExecutionSummary])
async def list_executions(
    prefect: PrefectDep,
    workflow_id: str | None = Query(default=None, max_length=64),
    status_: str | None = Query(default=None, alias="status", max_length=20),
    since: datetime | None = Query(default=None),
    until: datetime | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=100),
    tests: bool = Query(default=False, description="List test runs of drafts instead of production runs."),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> Page[ExecutionSummary]:
    """The tenant's executions, newest first, filtered by workflow, status and time range (test
    runs of drafts only with ``tests=true``)."""
    _aware("since", since)
    _aware("until", until)
    items, next_cursor, total = await runs.list_runs(
        prefect,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        status=status_,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
        tests=tests,
    )
    return Page(items=[ExecutionSummary(**i) for i in items], next_cursor=next_cursor, total=total)


@router.get("/executions/{execution_id}", response_model=ExecutionDetail)
async def read_execution(
    state: StateDep,
    prefect: PrefectDep,
    execution_id: str = ExecutionId,
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> ExecutionDetail:
    """One execution with input, output, steps (masked) and its Prefect UI link."""
    run = await runs.get_run(prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id)
    detail = await runs.execution_detail(prefect, run, prefect_api_url=state.settings.prefect.url)
    return ExecutionDetail(**detail)


@router.get("/executions/{execution_id}/steps", response_model=list[StepPublic])
async def read_execution_steps(
    prefect: PrefectDep,
    execution_id: str = ExecutionId,
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> list[StepPublic]:
    """The execution's steps in start order."""
    steps = await runs.read_execution_steps(
        prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id
    )
    return [StepPublic(**s) for s in steps]


@router.post("/executions/{execution_id}/cancel", response_model=ExecutionSummary)
async def cancel_execution(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    execution_id: str = ExecutionId,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> ExecutionSummary:
    """Cancel a pending or running execution (409 when it already finished)."""
    run = await runs.cancel_run(prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id)
    # A run waiting for people: its open human tasks are cancelled with it.
    await cancel_human_tasks(session, tenant_id=principal.required_tenant_id(), flow_run_id=str(run.id))
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="execution.cancel",
        context=context,
        resource_type="execution",
        resource_id=execution_id,
    )
    await session.commit()
    return ExecutionSummary(**runs.summary_of(run))


@router.post("/executions/{execution_id}/retry", response_model=ExecutionStarted, status_code=status.HTTP_202_ACCEPTED)
async def retry_execution(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    prefect: PrefectDep,
    state: StateDep,
    execution_id: str = ExecutionId,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> ExecutionStarted:
    """A new execution of the same version with the same trigger input."""
    await quotas.check_new_run(session, prefect, tenant_id=principal.required_tenant_id(), config=state.config)
    run = await runs.retry_run(prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id)
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="execution.retry",
        context=context,
        resource_type="execution",
        resource_id=str(run.id),
        details={"retry_of": execution_id},
    )
    await session.commit()
    return ExecutionStarted(execution_id=str(run.id))
