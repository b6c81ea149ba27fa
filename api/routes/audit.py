"""The audit log (admins only): filtered, paginated, and its hash-chain check."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from api.auth.deps import Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest
from api.schemas import AuditEventPublic, AuditVerification, Page
from api.services import audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEventPublic])
async def list_audit(
    session: TenantSession,
    actor: str | None = Query(default=None, max_length=120, description="Actor id (user, key)."),
    action: str | None = Query(default=None, max_length=100, description="Action; 'auth.*' prefix."),
    resource_type: str | None = Query(default=None, max_length=50),
    since: datetime | None = Query(default=None),
    until: datetime | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=20),
    principal: Principal = Requires(Permission.AUDIT_READ),
) -> Page[AuditEventPublic]:
    """Newest-first audit events of the tenant."""
    before_seq = None
    if cursor:
        if not cursor.isdigit():
            raise BadRequest("cursor is not valid", details={"field": "cursor"})
        before_seq = int(cursor)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise BadRequest(f"{name} needs a timezone", details={"field": name})
    events = await audit.list_events(
        session,
        tenant_id=principal.required_tenant_id(),
        actor=actor,
        action=action,
        resource_type=resource_type,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit + 1,
    )
    page = events[:limit]
    next_cursor = str(page[-1].seq) if len(events) > limit else None
    return Page(items=[AuditEventPublic.model_validate(e) for e in page], next_cursor=next_cursor)


@router.get("/verify", response_model=AuditVerification)
async def verify_audit(
    session: TenantSession, principal: Principal = Requires(Permission.AUDIT_READ)
) -> AuditVerification:
    """Recompute the tenant's hash chain; reports the first tampered event."""
    broken = await audit.verify_chain(session, tenant_id=principal.required_tenant_id())
    return AuditVerification(valid=broken is None, broken_at_seq=broken)
