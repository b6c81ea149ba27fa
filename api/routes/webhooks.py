"""Webhook management: list, read, rotate, delivery history, replay and test deliveries, and the
admins' repair of deliveries whose event started no run."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Path, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.db.base import new_id, utcnow
from api.errors import BadRequest, Conflict, NotFound
from api.prefect import PrefectDep
from api.routes.webhook_receiver import outcome_response, wake_dispatcher
from api.schemas import Page
from api.services import audit
from api.webhooks import credential_stamps, service
from api.webhooks.automations import new_token
from api.webhooks.models import Webhook, WebhookDelivery
from api.webhooks.repair import MAX_AGE, repair
from api.webhooks.secrets_cache import secret_cache
from api.webhooks.signatures import SignatureConfig, SignatureError, scheme_of, sign

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
WebhookId = Path(max_length=64, description="The webhook's id.")
STATUSES = ("accepted", "direct", "dispatched", "filtered", "bad_signature", "duplicate", "dead_letter")


class WebhookPublic(BaseModel):
    """A webhook endpoint of a published workflow."""

    id: str
    workflow_id: str
    node_id: str
    url: str
    scheme: str
    active: bool
    respond: str
    created_at: datetime
    updated_at: datetime


class DeliveryPublic(BaseModel):
    """One delivery and what became of it."""

    id: str
    status: str
    reason: str | None
    external_id: str | None
    method: str
    headers: dict[str, Any]
    query: dict[str, Any]
    body: str = Field(description="The raw body as text (base64 when it is not UTF-8).")
    payload: dict[str, Any] | None
    replay_of: str | None
    run_id: str | None
    received_at: datetime
    dispatched_at: datetime | None


class TestDelivery(BaseModel):
    """A sample body to sign server-side and deliver."""

    body: Any = Field(default_factory=lambda: {"test": True}, description="JSON body to send.")


def _public(webhook: Webhook, request: Request) -> WebhookPublic:
    base = str(request.base_url).rstrip("/")
    return WebhookPublic(
        id=webhook.id,
        workflow_id=webhook.workflow_id,
        node_id=webhook.node_id,
        url=f"{base}/webhook/{webhook.token}",
        scheme=scheme_of(webhook.config.get("signature")),
        active=webhook.active,
        respond=webhook.config.get("respond", "immediately"),
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def _body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(body).decode()


def _delivery(d: WebhookDelivery) -> DeliveryPublic:
    headers = {k: v for k, v in d.headers.items() if k not in ("authorization", "cookie")}
    return DeliveryPublic(
        id=d.id,
        status=d.status,
        reason=d.reason,
        external_id=d.external_id,
        method=d.method,
        headers=headers,
        query=d.query,
        body=_body_text(d.body),
        payload=d.payload,
        replay_of=d.replay_of,
        run_id=d.run_id,
        received_at=d.received_at,
        dispatched_at=d.dispatched_at,
    )


async def _get(session: Any, tenant_id: str, webhook_id: str) -> Webhook:
    webhook = (
        await session.execute(select(Webhook).where(Webhook.tenant_id == tenant_id, Webhook.id == webhook_id))
    ).scalar_one_or_none()
    if webhook is None:
        raise NotFound(f"webhook {webhook_id!r} not found", details={"webhook_id": webhook_id})
    return webhook


@router.get("", response_model=Page[WebhookPublic])
async def list_webhooks(
    request: Request,
    session: TenantSession,
    workflow_id: str | None = Query(default=None, max_length=64),
    principal: Principal = Requires(Permission.WEBHOOK_READ),
) -> Page[WebhookPublic]:
    """The tenant's webhooks (one per published webhook trigger node)."""
    query = select(Webhook).where(Webhook.tenant_id == principal.tenant_id)
    if workflow_id:
        query = query.where(Webhook.workflow_id == workflow_id)
    rows = list((await session.execute(query.order_by(Webhook.created_at))).scalars())
    return Page(items=[_public(w, request) for w in rows], total=len(rows))


@router.get("/{webhook_id}", response_model=WebhookPublic)
async def get_webhook(
    request: Request,
    session: TenantSession,
    webhook_id: str = WebhookId,
    principal: Principal = Requires(Permission.WEBHOOK_READ),
) -> WebhookPublic:
    """One webhook with its URL and signature scheme."""
    return _public(await _get(session, principal.tenant_id or "", webhook_id), request)


@router.post("/{webhook_id}/rotate", response_model=WebhookPublic)
async def rotate_webhook(
    request: Request,
    session: TenantSession,
    context: AuditCtx,
    webhook_id: str = WebhookId,
    principal: Principal = Requires(Permission.WEBHOOK_MANAGE),
) -> WebhookPublic:
    """Give the webhook a new URL token; the old URL stops working at once."""
    webhook = await _get(session, principal.tenant_id or "", webhook_id)
    webhook.token, webhook.updated_at = new_token(), utcnow()
    await audit.record(
        session,
        tenant_id=webhook.tenant_id,
        action="webhook.rotate",
        context=context,
        resource_type="webhook",
        resource_id=webhook.id,
    )
    await session.commit()
    return _public(webhook, request)


@router.get("/{webhook_id}/events", response_model=Page[DeliveryPublic])
async def list_deliveries(
    session: TenantSession,
    webhook_id: str = WebhookId,
    status_: str | None = Query(default=None, alias="status", pattern="^(" + "|".join(STATUSES) + ")$"),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=20, pattern="^[0-9]+$"),
    principal: Principal = Requires(Permission.WEBHOOK_READ),
) -> Page[DeliveryPublic]:
    """Deliveries of the webhook, newest first: verdict, dispatch and run."""
    webhook = await _get(session, principal.tenant_id or "", webhook_id)
    where = [WebhookDelivery.tenant_id == webhook.tenant_id, WebhookDelivery.webhook_id == webhook.id]
    if status_:
        where.append(WebhookDelivery.status == status_)
    total = (await session.execute(select(func.count()).select_from(WebhookDelivery).where(*where))).scalar_one()
    if cursor:
        where.append(WebhookDelivery.seq < int(cursor))
    rows = list(
        (
            await session.execute(
                select(WebhookDelivery).where(*where).order_by(WebhookDelivery.seq.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return Page(items=[_delivery(d) for d in rows[:limit]], next_cursor=next_cursor, total=total)


@router.post("/{webhook_id}/events/{event_id}/replay", status_code=status.HTTP_202_ACCEPTED)
async def replay_delivery(
    request: Request,
    state: StateDep,
    session: TenantSession,
    context: AuditCtx,
    webhook_id: str = WebhookId,
    event_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.WEBHOOK_MANAGE),
) -> dict[str, Any]:
    """Deliver a stored delivery again (a new delivery id, so a new run)."""
    webhook = await _get(session, principal.tenant_id or "", webhook_id)
    fresh = await service.replay(state.db, tenant_id=webhook.tenant_id, webhook_id=webhook.id, delivery_id_=event_id)
    await audit.record(
        session,
        tenant_id=webhook.tenant_id,
        action="webhook.replay",
        context=context,
        resource_type="webhook",
        resource_id=webhook.id,
        details={"event_id": event_id, "delivery_id": fresh.id},
    )
    await session.commit()
    wake_dispatcher(request)
    return {"delivery_id": fresh.id, "replay_of": event_id}


@router.post("/{webhook_id}/test")
async def test_webhook(
    request: Request,
    state: StateDep,
    session: TenantSession,
    body: TestDelivery | None = Body(default=None),
    webhook_id: str = WebhookId,
    principal: Principal = Requires(Permission.WEBHOOK_MANAGE),
) -> Any:
    """Sign a sample body with the webhook's secret and deliver it like a sender would."""
    webhook = await _get(session, principal.tenant_id or "", webhook_id)
    sample = body.body if body else {"test": True}
    msg_id = f"test_{new_id()}"
    if isinstance(sample, dict) and "id" not in sample:
        sample = {"id": msg_id, **sample}
    raw = json.dumps(sample).encode()
    try:
        signature = SignatureConfig.from_config(webhook.config.get("signature"))
    except SignatureError as exc:
        raise BadRequest(exc.reason, details={"field": "signature"}) from None
    secret = ""
    if signature.scheme != "none":
        try:
            name = signature.secret or ""
            secret = (
                await secret_cache.get(
                    webhook.tenant_id,
                    name,
                    read_stamp=credential_stamps.reader(state.db, tenant_id=webhook.tenant_id, name=name),
                )
            ).values[0]  # signed with the first
        except Exception as exc:
            raise BadRequest(
                f"the signing secret cannot be read: {exc}", details={"field": "signature.secret"}
            ) from None
    headers = {k.lower(): v for k, v in sign(signature, raw, secret, msg_id=msg_id).items()}
    headers["content-type"] = "application/json"
    try:
        outcome = await service.receive(
            state.db, webhook, method=webhook.config.get("methods", ["POST"])[0], headers=headers, query={}, body=raw
        )
    except service.StaleWebhook:
        await service.find_by_token(state.db, webhook.token, fresh=True)  # 404 retired, 409 paused
        raise
    if outcome.status == "accepted":
        wake_dispatcher(request)
    return outcome_response(outcome)


class RepairRequest(BaseModel):
    """What to repair: deliveries dispatched longer ago than ``older_than_seconds`` without a run."""

    older_than_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_AGE,
        description="Only deliveries dispatched longer ago than this (default GORAX_WEBHOOK_REPAIR_AFTER_SECONDS).",
    )
    dry_run: bool = Field(default=False, description="Report what would be done; change and post nothing.")


@router.post("/repair")
async def repair_deliveries(
    state: StateDep,
    prefect: PrefectDep,
    context: AuditCtx,
    body: RepairRequest | None = Body(default=None),
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> dict[str, Any]:
    """Post again the event of each of the tenant's deliveries dispatched long ago without a run
    (``gorax webhooks repair`` for one tenant): 409 while another repair runs."""
    request = body or RepairRequest()
    older_than = (
        state.config.webhook_repair_after_seconds if request.older_than_seconds is None else request.older_than_seconds
    )
    report = await repair(
        state.db,
        prefect,
        older_than=older_than,
        dry_run=request.dry_run,
        tenant_id=principal.tenant_id or "",
        context=context,
    )
    if report.busy:
        raise Conflict("another webhook repair is running; try again when it is done")
    return report.as_dict()
