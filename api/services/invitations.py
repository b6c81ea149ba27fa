"""Invitations: an admin offers a role in a tenant to an e-mail address; the invitee accepts.

Inviting answers the same whether the address has an account or not, and grants nothing: the
membership exists once the invitee accepts, either signed in as that address (pending
invitations are listed after sign-in) or with the invitation's token, signing in with the
account's password or, for an address without an account, registering one. The token is shown
once, to the admin who invites, to hand to the invitee; only its hash is stored. Inviting an
address again replaces its pending invitation. Invite, accept and revoke are audited in the
inviting tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import hash_password
from api.auth.permissions import Role
from api.auth.tokens import TokenSigner, digest, new_secret
from api.config import ApiSettings
from api.db.base import affected_rows, new_id, utcnow
from api.db.engine import Database
from api.errors import Conflict, NotFound
from api.models.identity import Invitation, Membership, Tenant, User
from api.services import audit
from api.services.audit import AuditContext
from api.services.auth import (
    MfaPending,
    TenantRole,
    TokenPair,
    audit_challenge,
    begin_sign_in,
    memberships_of,
    refuse_password_session,
    sso_only_tenants,
    verify_credentials,
)
from api.services.identity import normalize_email

#: Invitation tokens start with this, so a leaked one is recognisable.
TOKEN_PREFIX = "gxi_"
_GONE = "invitation not found: it may have expired, been revoked or been accepted already"


@dataclass(frozen=True)
class InvitationView:
    """An invitation as its tenant's admins see it."""

    id: str
    email: str
    role: str
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class OpenInvitation:
    """A pending invitation as its invitee sees it."""

    id: str
    tenant: TenantRole
    created_at: datetime
    expires_at: datetime


def _view(invitation: Invitation) -> InvitationView:
    return InvitationView(
        invitation.id,
        invitation.email,
        invitation.role,
        invitation.invited_by,
        invitation.created_at,
        invitation.expires_at,
    )


def _pending(now: datetime) -> tuple:
    return (Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now)


async def invite(
    session: AsyncSession,
    *,
    tenant_id: str,
    email: str,
    role: Role,
    ttl_seconds: int,
    context: AuditContext,
) -> tuple[InvitationView, str]:
    """Invite ``email`` to the tenant as ``role``; returns the invitation and its token.

    Only the tenant's own members are looked at (Conflict when the address is one), so the
    answer is the same whether the address has an account elsewhere or none at all.
    """
    email = normalize_email(email)
    member = await session.execute(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id, User.email == email)
    )
    if member.first() is not None:
        raise Conflict(f"{email} is already a member", details={"email": email})
    now = utcnow()
    replaced = await session.execute(
        update(Invitation)
        .where(Invitation.tenant_id == tenant_id, Invitation.email == email, *_pending(now))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    token = TOKEN_PREFIX + new_secret()
    invitation = Invitation(
        tenant_id=tenant_id,
        email=email,
        role=Role(role).value,
        token_hash=digest(token),
        invited_by=f"{context.actor_type}:{context.actor_id}",
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(invitation)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="invitation.created",
        context=context,
        resource_type="invitation",
        resource_id=invitation.id,
        after={"email": email, "role": invitation.role, "expires_at": invitation.expires_at.isoformat()},
        details={"replaced": affected_rows(replaced)} if affected_rows(replaced) else None,
    )
    await session.commit()
    return _view(invitation), token


async def list_pending(session: AsyncSession, *, tenant_id: str) -> list[InvitationView]:
    """The tenant's invitations that can still be accepted, oldest first."""
    rows = await session.execute(
        select(Invitation)
        .where(Invitation.tenant_id == tenant_id, *_pending(utcnow()))
        .order_by(Invitation.created_at, Invitation.email)
    )
    return [_view(invitation) for invitation in rows.scalars()]


async def revoke(session: AsyncSession, *, tenant_id: str, invitation_id: str, context: AuditContext) -> None:
    """Withdraw a pending invitation; its token stops working (NotFound if none is pending)."""
    invitation = (
        await session.execute(
            select(Invitation).where(
                Invitation.tenant_id == tenant_id, Invitation.id == invitation_id, *_pending(utcnow())
            )
        )
    ).scalar_one_or_none()
    if invitation is None:
        raise NotFound(f"no pending invitation {invitation_id!r}", details={"invitation_id": invitation_id})
    invitation.revoked_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="invitation.revoked",
        context=context,
        resource_type="invitation",
        resource_id=invitation.id,
        before={"email": invitation.email, "role": invitation.role},
    )
    await session.commit()


async def open_for(db: Database, *, email: str) -> list[OpenInvitation]:
    """The pending invitations to ``email`` (the signed-in user's), oldest first."""
    async with db.system_scope() as session:
        rows = await session.execute(
            select(Invitation, Tenant)
            .join(Tenant, Tenant.id == Invitation.tenant_id)
            .where(Invitation.email == email, *_pending(utcnow()))
            .order_by(Invitation.created_at)
        )
        return [
            OpenInvitation(
                invitation.id,
                TenantRole(tenant.id, tenant.slug, tenant.name, invitation.role),
                invitation.created_at,
                invitation.expires_at,
            )
            for invitation, tenant in rows.all()
        ]


async def _claim(session: AsyncSession, invitation: Invitation, user_id: str) -> None:
    """Mark ``invitation`` accepted by ``user_id`` (the caller commits); compare-and-set, so an
    invitation is accepted once even by concurrent requests."""
    claimed = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, *_pending(utcnow()))
        .values(accepted_at=utcnow(), accepted_by=user_id)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(claimed) != 1:
        await session.rollback()
        raise NotFound(_GONE)


async def _join(session: AsyncSession, invitation: Invitation, user_id: str) -> None:
    """The invited membership (kept as it is when the user is a member already)."""
    member = await session.execute(
        select(Membership.id).where(Membership.tenant_id == invitation.tenant_id, Membership.user_id == user_id)
    )
    if member.first() is None:
        session.add(Membership(tenant_id=invitation.tenant_id, user_id=user_id, role=invitation.role))
        await session.flush()


async def _audit_accepted(
    db: Database, invitation: Invitation, user_id: str, context: AuditContext, *, account_created: bool
) -> None:
    await audit.record_now(
        db,
        tenant_id=invitation.tenant_id,
        action="invitation.accepted",
        context=replace(context, actor_type="user", actor_id=user_id),
        resource_type="invitation",
        resource_id=invitation.id,
        after={"email": invitation.email, "role": invitation.role, "user_id": user_id},
        details={"account_created": account_created},
    )


async def accept_as(db: Database, *, invitation_id: str, user_id: str, email: str, context: AuditContext) -> TenantRole:
    """Accept one of the signed-in user's own pending invitations; returns the membership."""
    async with db.system_scope() as session:
        row = (
            await session.execute(
                select(Invitation, Tenant)
                .join(Tenant, Tenant.id == Invitation.tenant_id)
                .where(Invitation.id == invitation_id, Invitation.email == email, *_pending(utcnow()))
            )
        ).first()
        if row is None:
            raise NotFound(_GONE, details={"invitation_id": invitation_id})
        invitation, tenant = row
        await _claim(session, invitation, user_id)
        await _join(session, invitation, user_id)
        await session.commit()
    await _audit_accepted(db, invitation, user_id, context, account_created=False)
    return TenantRole(tenant.id, tenant.slug, tenant.name, invitation.role)


async def accept_with_token(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    token: str,
    password: str,
    name: str,
    context: AuditContext,
) -> TokenPair | MfaPending:
    """Accept the invitation ``token`` names and sign in: with the password of the invited
    address's account, or by registering that account with ``password`` when it has none.
    Signing in may need its MFA step (:func:`api.services.auth.begin_sign_in`)."""
    async with db.system_scope() as session:
        invitation = (
            await session.execute(select(Invitation).where(Invitation.token_hash == digest(token), *_pending(utcnow())))
        ).scalar_one_or_none()
        if invitation is None:
            raise NotFound(_GONE)
        user = (await session.execute(select(User).where(User.email == invitation.email))).scalar_one_or_none()
        created = user is None
        if user is None:
            # Claimed before the account is made: a concurrent registration through the same
            # token finds the invitation taken instead of the address.
            user = User(id=new_id(), email=invitation.email, name=name.strip(), password_hash=hash_password(password))
            await _claim(session, invitation, user.id)
            session.add(user)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                raise Conflict(
                    "an account with this address was just made; sign in, then accept the invitation"
                ) from None
        else:
            # The same checks, lockout and answer as signing in.
            user, _ = await verify_credentials(
                db, session, config, email=invitation.email, password=password, context=context
            )
            await _claim(session, invitation, user.id)
        await _join(session, invitation, user.id)
        tenants = await memberships_of(session, user.id)
        sso_only = await sso_only_tenants(session, tenants)
        if not sso_only:
            result = await begin_sign_in(session, signer, config, user, tenants)
        await session.commit()
    await _audit_accepted(db, invitation, user.id, context, account_created=created)
    if sso_only:
        # The invitation is accepted; the session comes from the tenant's SSO, not a password.
        await refuse_password_session(db, tenants, user, context, sso_only)
    if isinstance(result, MfaPending):
        await audit_challenge(db, result, context)
    return result
