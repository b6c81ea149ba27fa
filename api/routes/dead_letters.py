"""Dead letters: webhook deliveries and scheduled runs that could not become a run, with the
reason; operators inspect, replay or discard them, one by one or in bulk (api/deadletters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.deadletters import service
from api.deadletters.models import SOURCES, STATUSES, DeadLetter
from api.errors import Conflict, NotFound
from api.prefect import PrefectDep
from api.routes.webhook_receiver import wake_dispatcher
from api.schemas import Page

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])
LetterId = Path(max_length=64, description="The dead letter's id.")
SourceQuery = Query(default=None, pattern="^(" + "|".join(SOURCES) + ")$", description="webhook or schedule.")
StatusQuery = Query(default=None, pattern="^(" + "|".join(STATUSES) + ")$", description="open, replayed or discarded.")


class DeadLetterPublic(BaseModel):
    """A trigger that could not become a run, why, and what was decided about it."""

    id: str
    source: Literal["webhook", "schedule"]
    reference: str = Field(description="What it is a dead letter of: delivery:<id> or flow-run:<id>.")
    workflow_id: str
    node_id: str | None
    webhook_id: str | None
    delivery_id: str | None
    flow_run_id: str | None
    reason: str
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime
    status: Literal["open", "replayed", "discarded"]
    decided_by: str | None
    decided_at: datetime | None
    note: str | None = Field(description="The reason it was discarded.")
    replay_delivery_id: str | None
    replay_run_id: str | None


class DeadLetterDetail(DeadLetterPublic):
    """A dead letter with what its run would have received (private headers never included)."""

    payload: dict[str, Any] | None


class DeadLetterPage(Page[DeadLetterPublic]):
    """A page of dead letters and the tenant's counts by status."""

    counts: dict[str, int] = Field(default_factory=dict)


class DecisionResult(BaseModel):
    """What became of one dead letter."""

    id: str
    ok: bool
    status: str | None
    error: str | None = None
    replay_delivery_id: str | None = None
    replay_run_id: str | None = None


class DiscardRequest(BaseModel):
    """Why the dead letter is dropped (kept on it and in the audit log)."""

    reason: str = Field(min_length=1, max_length=1000)


class BulkFilter(BaseModel):
    """Open dead letters matching all of these."""

    source: Literal["webhook", "schedule"] | None = None
    workflow_id: str | None = Field(default=None, max_length=64)


class BulkRequest(BaseModel):
    """Replay or discard several open dead letters: by ``ids`` or by ``filter`` (one of them)."""

    action: Literal["replay", "discard"]
    ids: list[str] | None = Field(default=None, max_length=service.BULK_LIMIT)
    filter: BulkFilter | None = None
    reason: str | None = Field(default=None, max_length=1000, description="Required to discard.")

    @model_validator(mode="after")
    def _one_selection(self) -> BulkRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        if self.action == "discard" and not (self.reason or "").strip():
            raise ValueError("reason: a discard needs a reason")
        return self


class BulkResult(BaseModel):
    """Each selected dead letter's outcome."""

    action: str
    done: int
    failed: int
    results: list[DecisionResult]


class SweepRequest(BaseModel):
    """Look for dead letters of this tenant now."""

    after_seconds: float | None = Field(
        default=None, ge=0, le=10 * 366 * 24 * 3600.0, description="Default GORAX_DEAD_LETTER_AFTER_SECONDS."
    )


def _public(letter: DeadLetter) -> DeadLetterPublic:
    return DeadLetterPublic.model_validate(letter, from_attributes=True)


def _result(outcome: service.Outcome) -> DecisionResult:
    return DecisionResult(**outcome.__dict__)


async def _get(session: AsyncSession, tenant_id: str, letter_id: str) -> DeadLetter:
    letter = (
        await session.execute(select(DeadLetter).where(DeadLetter.tenant_id == tenant_id, DeadLetter.id == letter_id))
    ).scalar_one_or_none()
    if letter is None:
        raise NotFound(f"dead letter {letter_id!r} not found", details={"dead_letter_id": letter_id})
    return letter


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    session: TenantSession,
    status: str | None = StatusQuery,
    source: str | None = SourceQuery,
    workflow_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=10, pattern="^[0-9]+$", description="Offset of the page."),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> DeadLetterPage:
    """The tenant's dead letters, last seen first, with counts by status."""
    tenant_id = principal.tenant_id or ""
    query = select(DeadLetter).where(DeadLetter.tenant_id == tenant_id)
    if status:
        query = query.where(DeadLetter.status == status)
    if source:
        query = query.where(DeadLetter.source == source)
    if workflow_id:
        query = query.where(DeadLetter.workflow_id == workflow_id)
    offset = int(cursor or 0)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = list(
        (
            await session.execute(
                query.order_by(DeadLetter.last_seen_at.desc(), DeadLetter.id).offset(offset).limit(limit + 1)
            )
        ).scalars()
    )
    await service.resolve_replays(session, rows)
    return DeadLetterPage(
        items=[_public(letter) for letter in rows[:limit]],
        total=total,
        next_cursor=str(offset + limit) if len(rows) > limit else None,
        counts=await service.counts(session, tenant_id),
    )


@router.get("/{letter_id}", response_model=DeadLetterDetail)
async def get_dead_letter(
    session: TenantSession,
    letter_id: str = LetterId,
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> DeadLetterDetail:
    """One dead letter with its payload."""
    letter = await _get(session, principal.tenant_id or "", letter_id)
    await service.resolve_replays(session, [letter])
    return DeadLetterDetail.model_validate(letter, from_attributes=True)


@router.post("/{letter_id}/replay", response_model=DecisionResult)
async def replay_dead_letter(
    request: Request,
    state: StateDep,
    prefect: PrefectDep,
    session: TenantSession,
    context: AuditCtx,
    letter_id: str = LetterId,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> DecisionResult:
    """Replay through the normal path: a webhook delivery is queued again (the dead letter names
    the new delivery, then its run); a scheduled run starts again. 409 when it cannot run yet."""
    tenant_id = principal.tenant_id or ""
    letter = await _get(session, tenant_id, letter_id)
    outcome = await service.replay_one(state.db, prefect, tenant_id=tenant_id, letter=letter, context=context)
    if not outcome.ok:
        raise Conflict(outcome.error or "not replayed", details={"dead_letter_id": letter_id})
    wake_dispatcher(request)
    return _result(outcome)


@router.post("/{letter_id}/discard", response_model=DecisionResult)
async def discard_dead_letter(
    state: StateDep,
    session: TenantSession,
    context: AuditCtx,
    body: DiscardRequest,
    letter_id: str = LetterId,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> DecisionResult:
    """Drop an open dead letter on purpose, with the reason."""
    tenant_id = principal.tenant_id or ""
    letter = await _get(session, tenant_id, letter_id)
    outcome = await service.discard_one(state.db, tenant_id=tenant_id, letter=letter, note=body.reason, context=context)
    if not outcome.ok:
        raise Conflict(outcome.error or "not discarded", details={"dead_letter_id": letter_id})
    return _result(outcome)


@router.post("/bulk", response_model=BulkResult)
async def bulk_decide(
    request: Request,
    state: StateDep,
    prefect: PrefectDep,
    session: TenantSession,
    context: AuditCtx,
    body: BulkRequest,
    principal: Principal = Requires(Permission.EXECUTION_RUN),
) -> BulkResult:
    """Replay or discard open dead letters by ids or by filter (at most 500); each one's outcome,
    an id not found (or not the tenant's) included."""
    tenant_id = principal.tenant_id or ""
    query = select(DeadLetter).where(DeadLetter.tenant_id == tenant_id)
    if body.ids is not None:
        query = query.where(DeadLetter.id.in_(body.ids))
    else:
        flt = body.filter or BulkFilter()
        query = query.where(DeadLetter.status == "open")
        if flt.source:
            query = query.where(DeadLetter.source == flt.source)
        if flt.workflow_id:
            query = query.where(DeadLetter.workflow_id == flt.workflow_id)
    letters = list(
        (await session.execute(query.order_by(DeadLetter.first_seen_at).limit(service.BULK_LIMIT))).scalars()
    )
    await session.commit()  # the decisions run in their own transactions
    results: list[DecisionResult] = []
    for letter in letters:
        if body.action == "replay":
            outcome = await service.replay_one(state.db, prefect, tenant_id=tenant_id, letter=letter, context=context)
        else:
            outcome = await service.discard_one(
                state.db, tenant_id=tenant_id, letter=letter, note=(body.reason or "").strip(), context=context
            )
        results.append(_result(outcome))
    found = {letter.id for letter in letters}
    results += [
        DecisionResult(id=i, ok=False, status=None, error=f"dead letter {i!r} not found")
        for i in dict.fromkeys(body.ids or [])
        if i not in found
    ]
    if body.action == "replay":
        wake_dispatcher(request)
    done = sum(r.ok for r in results)
    return BulkResult(action=body.action, done=done, failed=len(results) - done, results=results)


@router.post("/sweep")
async def sweep_now(
    state: StateDep,
    prefect: PrefectDep,
    body: SweepRequest | None = Body(default=None),
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> dict[str, Any]:
    """Look for this tenant's dead letters now (the background sweep does so every
    ``dead_letter_sweep_seconds``); 409 while another sweep runs."""
    after = state.config.dead_letter_after_seconds if body is None or body.after_seconds is None else body.after_seconds
    report = await service.sweep(state.db, prefect, after_seconds=after, tenant_id=principal.tenant_id or "")
    if report.busy:
        raise Conflict("another dead-letter sweep is running; try again when it is done")
    return report.as_dict()
