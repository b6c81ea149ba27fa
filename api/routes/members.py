"""Tenant members (admins only): list, change role, remove; invite, list and revoke invitations.

Nobody is added by e-mail directly: an invitation grants nothing until the invitee accepts it
(see :mod:`api.services.invitations` and the ``/auth/invitations`` routes).
"""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.schemas import (
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
    MemberPublic,
    MemberUpdate,
    Page,
)
from api.services import identity, invitations
from api.services.identity import MemberView
from api.services.invitations import InvitationView

router = APIRouter(prefix="/members", tags=["members"])


def _public(view: MemberView) -> MemberPublic:
    return MemberPublic(
        user_id=view.user_id, email=view.email, name=view.name, role=Role(view.role), created_at=view.created_at
    )


def _invitation(view: InvitationView) -> InvitationPublic:
    return InvitationPublic(
        id=view.id,
        email=view.email,
        role=Role(view.role),
        invited_by=view.invited_by,
        created_at=view.created_at,
        expires_at=view.expires_at,
    )


@router.get("", response_model=Page[MemberPublic])
async def list_members(
    session: TenantSession, principal: Principal = Requires(Permission.MEMBER_READ)
) -> Page[MemberPublic]:
    """Every member of the tenant."""
    members = await identity.list_members(session, tenant_id=principal.required_tenant_id())
    return Page(items=[_public(m) for m in members], total=len(members))


@router.get("/invitations", response_model=Page[InvitationPublic])
async def list_invitations(
    session: TenantSession, principal: Principal = Requires(Permission.MEMBER_READ)
) -> Page[InvitationPublic]:
    """The tenant's invitations that can still be accepted."""
    pending = await invitations.list_pending(session, tenant_id=principal.required_tenant_id())
    return Page(items=[_invitation(v) for v in pending], total=len(pending))


@router.post("/invitations", response_model=InvitationCreated, status_code=status.HTTP_201_CREATED)
async def invite(
    body: InvitationCreate,
    session: TenantSession,
    context: AuditCtx,
    state: StateDep,
    principal: Principal = Requires(Permission.MEMBER_MANAGE),
) -> InvitationCreated:
    """Invite an e-mail address; the same answer whether it has an account or not. The token
    is shown in this response only; inviting the address again replaces it."""
    view, token = await invitations.invite(
        session,
        tenant_id=principal.required_tenant_id(),
        email=body.email,
        role=body.role,
        ttl_seconds=state.config.invitation_ttl_seconds,
        context=context,
    )
    return InvitationCreated(**_invitation(view).model_dump(), token=token)


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    session: TenantSession,
    context: AuditCtx,
    invitation_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.MEMBER_MANAGE),
) -> None:
    """Withdraw a pending invitation; its token stops working."""
    await invitations.revoke(
        session, tenant_id=principal.required_tenant_id(), invitation_id=invitation_id, context=context
    )


@router.patch("/{user_id}", response_model=MemberPublic)
async def change_role(
    body: MemberUpdate,
    session: TenantSession,
    context: AuditCtx,
    user_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.MEMBER_MANAGE),
) -> MemberPublic:
    """Change a member's role (the last admin stays admin)."""
    view = await identity.change_role(
        session, tenant_id=principal.required_tenant_id(), user_id=user_id, role=body.role, context=context
    )
    return _public(view)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    session: TenantSession,
    context: AuditCtx,
    user_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.MEMBER_MANAGE),
) -> None:
    """Remove a member from the tenant."""
    await identity.remove_member(session, tenant_id=principal.required_tenant_id(), user_id=user_id, context=context)
