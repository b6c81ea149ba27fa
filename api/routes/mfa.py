"""MFA: a user's TOTP factor and recovery codes, the second step of signing in, and the tenant's
MFA policy (admins).

The factor routes are the signed-in user's own (``Permission.ACCOUNT``: never an API key, which
stays MFA-free and scoped by its role). The second step of a sign-in is public and carries the
challenge ``POST /auth/login`` answered, in the body. Secrets, codes and challenges travel in
bodies only, never in a URL.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.auth.deps import AuditCtx, Public, Requires, StateDep, TenantSession
from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.routes.auth import set_session_cookies, token_response
from api.schemas import (
    EnrolledTokenResponse,
    MfaChallengeRequest,
    MfaCodeRequest,
    MfaPolicyPublic,
    MfaPolicyUpdate,
    MfaStatus,
    MfaVerifyRequest,
    RecoveryCodes,
    TokenResponse,
    TotpEnrolment,
)
from api.services import auth as auth_service
from api.services import mfa
from api.services.mfa import Enrolment, Policy

router = APIRouter(tags=["mfa"])


def _enrolment(enrolment: Enrolment) -> TotpEnrolment:
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg)


def _policy(policy: Policy) -> MfaPolicyPublic:
    return MfaPolicyPublic(
        mode=policy.mode,
        roles=[Role(r) for r in policy.roles],
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
        members_without_mfa=policy.members_without_mfa,
    )


def _tenant_ids(principal: Principal) -> list[str]:
    return [tenant_id for tenant_id, _ in principal.memberships]


# --- the second step of signing in -------------------------------------------------------------


@router.post("/auth/mfa/verify", response_model=TokenResponse, dependencies=[Public()])
async def verify(body: MfaVerifyRequest, response: Response, state: StateDep, context: AuditCtx) -> TokenResponse:
    """Finish a sign-in whose challenge step is ``verify``, with a TOTP code or a recovery code
    (each recovery code works once); sets the session cookies as ``/auth/login`` does."""
    pair = await auth_service.complete_mfa(
        state.db, state.signer, state.config, challenge=body.challenge, code=body.code, context=context
    )
    set_session_cookies(response, state, pair)
    return token_response(pair)


@router.post("/auth/mfa/enroll", response_model=TotpEnrolment, dependencies=[Public()])
async def enroll_at_sign_in(body: MfaChallengeRequest, state: StateDep, context: AuditCtx) -> TotpEnrolment:
    """Start TOTP enrolment for a sign-in whose challenge step is ``enroll`` (a tenant requires
    MFA and the user has none yet); the secret is shown in this response only."""
    enrolment = await auth_service.enrol_with_challenge(
        state.db, state.config, challenge=body.challenge, context=context
    )
    return _enrolment(enrolment)


@router.post("/auth/mfa/enroll/confirm", response_model=EnrolledTokenResponse, dependencies=[Public()])
async def confirm_at_sign_in(
    body: MfaVerifyRequest, response: Response, state: StateDep, context: AuditCtx
) -> EnrolledTokenResponse:
    """Confirm that enrolment with a first code and sign in; the recovery codes are in this
    response only."""
    pair, codes = await auth_service.confirm_enrolment(
        state.db, state.signer, state.config, challenge=body.challenge, code=body.code, context=context
    )
    set_session_cookies(response, state, pair)
    return EnrolledTokenResponse(**token_response(pair).model_dump(), recovery_codes=codes)


# --- the signed-in user's factor ----------------------------------------------------------------


@router.get("/auth/mfa", response_model=MfaStatus)
async def mfa_status(state: StateDep, principal: Principal = Requires(Permission.ACCOUNT)) -> MfaStatus:
    """The user's MFA state (never the secret) and which tenants require MFA of them."""
    async with state.db.system_scope() as session:
        found = await mfa.status(session, user_id=principal.id, memberships=principal.memberships)
    return MfaStatus(
        totp_enabled=found.totp_enabled,
        totp_pending=found.totp_pending,
        confirmed_at=found.confirmed_at,
        recovery_codes_left=found.recovery_codes_left,
        required_by=found.required_by,
    )


@router.post("/auth/mfa/totp/enroll", response_model=TotpEnrolment)
async def enroll(
    state: StateDep, context: AuditCtx, principal: Principal = Requires(Permission.ACCOUNT)
) -> TotpEnrolment:
    """Start TOTP enrolment: a new secret, its otpauth URI and a QR code, shown in this response
    only. It is pending (sign-in does not ask for it) until confirmed with a code."""
    async with state.db.system_scope() as session:
        enrolment = await mfa.begin_enrolment(
            state.db,
            session,
            state.config,
            user_id=principal.id,
            email=principal.email or "",
            tenant_ids=_tenant_ids(principal),
            context=context,
        )
    return _enrolment(enrolment)


@router.post("/auth/mfa/totp/confirm", response_model=RecoveryCodes)
async def confirm(
    body: MfaCodeRequest, state: StateDep, context: AuditCtx, principal: Principal = Requires(Permission.ACCOUNT)
) -> RecoveryCodes:
    """Turn TOTP on with a first code from the app; answers the 10 recovery codes, once."""
    async with state.db.system_scope() as session:
        codes = await mfa.confirm_enrolment(
            state.db,
            session,
            state.config,
            user_id=principal.id,
            code=body.code,
            tenant_ids=_tenant_ids(principal),
            context=context,
            failure=mfa.CODE_REJECTED,
        )
        await session.commit()
    await mfa.audit_user(state.db, _tenant_ids(principal), "auth.mfa_confirmed", principal.id, context)
    return RecoveryCodes(recovery_codes=codes)


@router.delete("/auth/mfa/totp", status_code=status.HTTP_204_NO_CONTENT)
async def disable(
    body: MfaCodeRequest, state: StateDep, context: AuditCtx, principal: Principal = Requires(Permission.ACCOUNT)
) -> Response:
    """Turn TOTP off (its recovery codes too) with a current code or a recovery code; refused
    while a tenant's policy requires MFA of the user."""
    async with state.db.system_scope() as session:
        await mfa.disable(
            state.db,
            session,
            state.config,
            user_id=principal.id,
            code=body.code,
            memberships=principal.memberships,
            context=context,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/mfa/totp/recovery-codes", response_model=RecoveryCodes)
async def regenerate(
    body: MfaCodeRequest, state: StateDep, context: AuditCtx, principal: Principal = Requires(Permission.ACCOUNT)
) -> RecoveryCodes:
    """New recovery codes for a current TOTP code; the old ones stop working. Shown once."""
    async with state.db.system_scope() as session:
        codes = await mfa.regenerate_recovery_codes(
            state.db,
            session,
            state.config,
            user_id=principal.id,
            code=body.code,
            tenant_ids=_tenant_ids(principal),
            context=context,
        )
    return RecoveryCodes(recovery_codes=codes)


# --- the tenant's policy (admins) -----------------------------------------------------------------


@router.get("/tenant/mfa-policy", response_model=MfaPolicyPublic)
async def get_policy(
    session: TenantSession, principal: Principal = Requires(Permission.SETTINGS_MANAGE)
) -> MfaPolicyPublic:
    """Whom the tenant requires MFA of, and how many of them have not enrolled yet."""
    return _policy(await mfa.get_policy(session, tenant_id=principal.required_tenant_id()))


@router.put("/tenant/mfa-policy", response_model=MfaPolicyPublic)
async def put_policy(
    body: MfaPolicyUpdate,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> MfaPolicyPublic:
    """Set whom the tenant requires MFA of: ``off``, ``all`` or ``roles`` (with ``roles``). It
    applies from each member's next sign-in; sessions already open go on."""
    policy = await mfa.set_policy(
        session,
        tenant_id=principal.required_tenant_id(),
        mode=body.mode,
        roles=[r.value for r in body.roles],
        context=context,
    )
    return _policy(policy)
