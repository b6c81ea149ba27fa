"""Tenant members (admins only): list, add, change role, remove."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.schemas import MemberCreate, MemberCreated, MemberPublic, MemberUpdate, Page
from api.services import identity
from api.services.identity import MemberView

router = APIRouter(prefix="/members", tags=["members"])


def _public(view: MemberView) -> MemberPublic:
    return MemberPublic(user_id=view.user_id, email=view.email, name=view.name,
                        role=Role(view.role), created_at=view.created_at)


@router.get("", response_model=Page[MemberPublic])
async def list_members(session: TenantSession,
                       principal: Principal = Requires(Permission.MEMBER_READ)) -> Page[MemberPublic]:
    """Every member of the tenant."""
    members = await identity.list_members(session, tenant_id=principal.tenant_id)
    return Page(items=[_public(m) for m in members], total=len(members))


@router.post("", response_model=MemberCreated, status_code=status.HTTP_201_CREATED)
async def add_member(body: MemberCreate, session: TenantSession, context: AuditCtx,
                     principal: Principal = Requires(Permission.MEMBER_MANAGE)) -> MemberCreated:
    """Add a member; a new user gets a one-time password in this response only."""
    view, password = await identity.add_member(
        session, tenant_id=principal.tenant_id, email=body.email, role=body.role,
        name=body.name, context=context,
    )
    return MemberCreated(**_public(view).model_dump(), password=password)


@router.patch("/{user_id}", response_model=MemberPublic)
async def change_role(body: MemberUpdate, session: TenantSession, context: AuditCtx,
                      user_id: str = Path(max_length=64),
                      principal: Principal = Requires(Permission.MEMBER_MANAGE)) -> MemberPublic:
    """Change a member's role (the last admin stays admin)."""
    view = await identity.change_role(session, tenant_id=principal.tenant_id, user_id=user_id,
                                      role=body.role, context=context)
    return _public(view)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(session: TenantSession, context: AuditCtx,
                        user_id: str = Path(max_length=64),
                        principal: Principal = Requires(Permission.MEMBER_MANAGE)) -> None:
    """Remove a member from the tenant."""
    await identity.remove_member(session, tenant_id=principal.tenant_id, user_id=user_id,
                                 context=context)
