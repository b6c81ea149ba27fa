"""Expression preview: the value of a CEL expression or template against a past run's data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth.deps import Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.prefect import PrefectDep
from api.services import expression_preview as preview
from api.services import workflows as workflow_service
from blocks.redact import mask
from translator.errors import ExpressionError
from translator.expressions import DEFAULT_LIMITS

router = APIRouter(tags=["workflows"])


class PreviewRequest(BaseModel):
    expression: str | None = Field(
        default=None, max_length=DEFAULT_LIMITS.max_length, description="Bare CEL (an expression field)."
    )
    template: str | None = Field(
        default=None, max_length=64 * 1024, description="A config string that may hold {{ CEL }} templates."
    )
    node_id: str = Field(max_length=64, description="The node whose field it is: its ancestors' outputs are in scope.")
    field: str | None = Field(default=None, max_length=200, description="The config field path (named in errors).")
    execution_id: str | None = Field(
        default=None, max_length=64, description="The run to evaluate against; the workflow's newest when absent."
    )


class PreviewProblem(BaseModel):
    message: str
    code: str
    position: int | None = Field(default=None, description="Offset in the text where the problem is (0-based).")


class PreviewResult(BaseModel):
    ok: bool
    value: Any = None
    type: str | None = Field(
        default=None, description="JSON type of the value: null, boolean, number, string, list, map."
    )
    error: PreviewProblem | None = None
    node_id: str
    field: str | None = None
    execution_id: str | None = Field(default=None, description="The run the value comes from (null: none yet).")


@router.post("/workflows/{workflow_id}/expressions/preview", response_model=PreviewResult)
async def preview_expression(
    body: PreviewRequest,
    session: TenantSession,
    prefect: PrefectDep,
    workflow_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> PreviewResult:
    """Compile the text as validation does and evaluate it in the node's scope in a past run
    (``trigger`` and the node's ancestors' masked outputs; no variables, no secrets). Compile and
    evaluation problems are answered in ``error`` (200) with the offset of a syntax error; a
    request naming no text, a node not in the draft or another workflow's run is an error."""
    tenant_id = principal.required_tenant_id()
    workflow = await workflow_service.get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    graph = await workflow_service.read_current_graph(workflow)
    preview.check_request(expression=body.expression, template=body.template, node_id=body.node_id, graph=graph)
    text = body.expression if body.expression is not None else body.template
    assert text is not None
    answer = {"node_id": body.node_id, "field": body.field}
    compiled = preview.compile_text(text, template=body.template is not None)
    if isinstance(compiled, preview.PreviewError):
        return PreviewResult(ok=False, error=PreviewProblem(**vars(compiled)), **answer)
    run = await preview.run_for(prefect, tenant_id=tenant_id, workflow_id=workflow_id, execution_id=body.execution_id)
    if run is None:
        problem = PreviewProblem(message="the workflow has not run yet: run it to preview values", code="no_run")
        return PreviewResult(ok=False, error=problem, **answer)
    scope = await preview.scope_of(
        prefect,
        run,
        visible=preview.ancestors(graph, body.node_id),
        workflow={"id": workflow_id, "name": workflow.name},
    )
    answer["execution_id"] = str(run.id)
    try:
        # Evaluation is bounded (steps, a second, result size) but CPU work: off the event loop.
        value = mask(await run_in_threadpool(compiled.evaluate, scope))
    except ExpressionError as exc:
        return PreviewResult(ok=False, error=PreviewProblem(message=exc.message, code=exc.code), **answer)
    return PreviewResult(ok=True, value=value, type=preview.json_type(value), **answer)
