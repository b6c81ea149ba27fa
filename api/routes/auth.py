"""Sign-in, token refresh, sign-out, the current principal, and the user's invitations."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Path, Response, status

from api.auth.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AuditCtx,
    Public,
    Requires,
    StateDep,
)
from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.models.identity import Tenant, User
from api.schemas import (
    InvitationAccept,
    LoginRequest,
    MeResponse,
    MfaChallengeResponse,
    OpenInvitationPublic,
    Page,
    RefreshRequest,
    TenantMembershipPublic,
    TenantPublic,
    TokenResponse,
    UserPublic,
)
from api.services import auth as auth_service
from api.services import invitations
from api.services.auth import MfaPending, TenantRole, TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])


def set_session_cookies(response: Response, state: StateDep, pair: TokenPair) -> None:
    csrf = secrets.token_urlsafe(24)
    ttl = min(state.config.refresh_token_ttl_seconds, 24 * 3600)
    session = state.signer.issue(user_id=pair.user.id, family_id=pair.family_id, kind="session", ttl=ttl, csrf=csrf)
    secure = state.config.cookie_secure
    response.set_cookie(SESSION_COOKIE, session, max_age=ttl, httponly=True, samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure, path="/")


def _membership(tenant: TenantRole) -> TenantMembershipPublic:
    return TenantMembershipPublic(id=tenant.id, slug=tenant.slug, name=tenant.name, role=Role(tenant.role))


def token_response(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user=UserPublic(id=pair.user.id, email=pair.user.email, name=pair.user.name),
        tenants=[_membership(t) for t in pair.tenants],
    )


def _signed_in(
    response: Response, state: StateDep, result: TokenPair | MfaPending
) -> TokenResponse | MfaChallengeResponse:
    """Tokens and cookies for a session; only the challenge (no token, no cookie) for an MFA step."""
    if isinstance(result, MfaPending):
        issued = result.challenge
        return MfaChallengeResponse(
            step=issued.purpose, challenge=issued.token, expires_in=issued.expires_in, required_by=issued.required_by
        )
    set_session_cookies(response, state, result)
    return token_response(result)


@router.post("/login", response_model=TokenResponse | MfaChallengeResponse, dependencies=[Public()])
async def login(
    body: LoginRequest, response: Response, state: StateDep, context: AuditCtx
) -> TokenResponse | MfaChallengeResponse:
    """Sign in with e-mail and password; also sets the browser session and CSRF cookies.

    A user with TOTP on, or whom a tenant's policy requires MFA of, gets no session here but an
    MFA challenge (``mfa_required``): ``step`` ``verify`` goes on at ``POST /auth/mfa/verify``,
    ``enroll`` at ``POST /auth/mfa/enroll``."""
    result = await auth_service.login(
        state.db, state.signer, state.config, email=body.email, password=body.password, context=context
    )
    return _signed_in(response, state, result)


@router.post("/refresh", response_model=TokenResponse, dependencies=[Public()])
async def refresh(body: RefreshRequest, response: Response, state: StateDep, context: AuditCtx) -> TokenResponse:
    """Exchange a refresh token for a new pair; reusing an old one ends the session."""
    pair = await auth_service.refresh(
        state.db, state.signer, state.config, refresh_token=body.refresh_token, context=context
    )
    set_session_cookies(response, state, pair)
    return token_response(pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    state: StateDep, context: AuditCtx, principal: Principal = Requires(Permission.AUTHENTICATED)
) -> Response:
    """End the current sign-in (its tokens and cookie stop working) and clear the cookies."""
    if principal.kind == "user" and principal.session_id:
        await auth_service.logout(
            state.db,
            user_id=principal.id,
            family_id=principal.session_id,
            tenant_id=principal.tenant_id,
            context=context,
        )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeResponse)
async def me(state: StateDep, principal: Principal = Requires(Permission.AUTHENTICATED)) -> MeResponse:
    """Who is calling, in which tenant, with which role, and their other tenants."""
    async with state.db.system_scope() as session:
        user = await session.get(User, principal.id) if principal.kind == "user" else None
        ids = [tid for tid, _ in principal.memberships] or ([principal.tenant_id] if principal.tenant_id else [])
        tenants = {t.id: t for t in [await session.get(Tenant, tid) for tid in ids] if t}
    roles = dict(principal.memberships)
    current = tenants.get(principal.tenant_id or "")
    return MeResponse(
        user=UserPublic(id=user.id, email=user.email, name=user.name) if user else None,
        principal=principal.actor,
        tenant=TenantPublic(id=current.id, slug=current.slug, name=current.name) if current else None,
        role=principal.role,
        tenants=[
            TenantMembershipPublic(
                id=t.id, slug=t.slug, name=t.name, role=Role(roles.get(t.id, principal.role or "viewer"))
            )
            for t in tenants.values()
        ],
    )


@router.get("/invitations", response_model=Page[OpenInvitationPublic])
async def my_invitations(
    state: StateDep, principal: Principal = Requires(Permission.ACCOUNT)
) -> Page[OpenInvitationPublic]:
    """The signed-in user's pending invitations (with or without a tenant of their own)."""
    found = await invitations.open_for(state.db, email=principal.email or "")
    items = [
        OpenInvitationPublic(
            id=i.id,
            role=Role(i.tenant.role),
            created_at=i.created_at,
            expires_at=i.expires_at,
            tenant=TenantPublic(id=i.tenant.id, slug=i.tenant.slug, name=i.tenant.name),
        )
        for i in found
    ]
    return Page(items=items, total=len(items))


@router.post("/invitations/accept", response_model=TokenResponse | MfaChallengeResponse, dependencies=[Public()])
async def accept_invitation_with_token(
    body: InvitationAccept, response: Response, state: StateDep, context: AuditCtx
) -> TokenResponse | MfaChallengeResponse:
    """Accept an invitation with its token and sign in: with the invited address's password,
    or, when the address has no account yet, registering one with this password and name
    (signing in may answer an MFA challenge, as ``/auth/login`` does)."""
    result = await invitations.accept_with_token(
        state.db,
        state.signer,
        state.config,
        token=body.token,
        password=body.password,
        name=body.name,
        context=context,
    )
    return _signed_in(response, state, result)


@router.post("/invitations/{invitation_id}/accept", response_model=TenantMembershipPublic)
async def accept_invitation(
    state: StateDep,
    context: AuditCtx,
    invitation_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.ACCOUNT),
) -> TenantMembershipPublic:
    """Accept one of the signed-in user's pending invitations; returns the new membership."""
    joined = await invitations.accept_as(
        state.db, invitation_id=invitation_id, user_id=principal.id, email=principal.email or "", context=context
    )
    return _membership(joined)
