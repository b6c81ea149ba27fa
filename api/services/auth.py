"""Sign-in with lockout and a second factor, rotating refresh tokens with reuse detection,
sign-out.

A failed sign-in answers the same whatever the reason (no such account, wrong password,
disabled, locked); only the audit log says which. A password sign-in of a user with TOTP on, or
whom a tenant's policy requires MFA of, hands out an MFA challenge instead of a session
(:class:`MfaPending`); :func:`complete_mfa` (a code) or :func:`confirm_enrolment` (enrolling
first) turns it into one. Refresh tokens keep working: MFA is asked at sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import verify_password
from api.auth.tokens import TokenSigner, digest, new_secret
from api.config import ApiSettings
from api.db.base import affected_rows, new_id, utcnow
from api.db.engine import Database
from api.errors import BadRequest, Forbidden, Unauthorized
from api.models.identity import Membership, RefreshToken, Tenant, User
from api.models.mfa import MfaChallenge
from api.models.sso import SsoConfig
from api.services import audit, mfa
from api.services.audit import AuditContext
from api.services.identity import normalize_email

#: The one answer to a failed sign-in, whatever the reason.
SIGN_IN_FAILED = "invalid e-mail or password"


@dataclass(frozen=True)
class TenantRole:
    """One of a user's memberships."""

    id: str
    slug: str
    name: str
    role: str


@dataclass(frozen=True)
class TokenPair:
    """What sign-in and refresh hand out."""

    user: User
    tenants: list[TenantRole]
    access_token: str
    refresh_token: str
    family_id: str
    expires_in: int


@dataclass(frozen=True)
class MfaPending:
    """A password sign-in that needs its second step: a challenge, not a session."""

    user: User
    tenants: list[TenantRole]
    challenge: mfa.IssuedChallenge


async def memberships_of(session: AsyncSession, user_id: str) -> list[TenantRole]:
    """Every tenant the user belongs to, oldest membership first (system session)."""
    rows = await session.execute(
        select(Tenant, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Tenant.slug)
    )
    return [TenantRole(t.id, t.slug, t.name, role) for t, role in rows.all()]


async def _audit_all(
    db: Database,
    tenants: list[TenantRole],
    action: str,
    user: User,
    context: AuditContext,
    outcome: str = "success",
    details: dict | None = None,
) -> None:
    # The acting party of a sign-in is the user it names, whether or not it succeeded.
    context = replace(context, actor_type="user", actor_id=user.id)
    for tenant in tenants:
        await audit.record_now(
            db,
            tenant_id=tenant.id,
            action=action,
            context=context,
            resource_type="user",
            resource_id=user.id,
            outcome=outcome,
            details=details,
        )


async def _issue(
    session: AsyncSession, signer: TokenSigner, config: ApiSettings, user: User, family_id: str
) -> tuple[str, str]:
    refresh = new_secret()
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=user.id,
            token_hash=digest(refresh),
            expires_at=utcnow() + timedelta(seconds=config.refresh_token_ttl_seconds),
        )
    )
    return signer.issue(user_id=user.id, family_id=family_id), refresh


async def verify_credentials(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    email: str,
    password: str,
    context: AuditContext,
) -> tuple[User, list[TenantRole]]:
    """The user these credentials are of, with their tenants; one answer for every failure.

    An unknown address, a wrong password, a disabled and a locked account all get the same
    :class:`Unauthorized`, after the same password hashing, so the answer does not tell whether
    an account exists or is locked; the reason goes to the audit log of the user's tenants.
    ``login_max_failures`` wrong passwords in a row lock the account for ``lockout_seconds``.
    On success the failure count is cleared in ``session`` (the caller commits).
    """
    try:
        email = normalize_email(email)
    except BadRequest:
        email = ""
    user = None
    if email:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = verify_password(password, user.password_hash if user else None)
    if user is None:
        raise Unauthorized(SIGN_IN_FAILED)
    now = utcnow()
    tenants = await memberships_of(session, user.id)
    if user.locked_until is not None and user.locked_until > now:
        await _audit_all(
            db,
            tenants,
            "auth.login_failed",
            user,
            context,
            "denied",
            {"reason": "locked", "locked_until": user.locked_until.isoformat()},
        )
        raise Unauthorized(SIGN_IN_FAILED)
    if not ok or not user.is_active:
        # Increment in SQL so concurrent guesses cannot overwrite each other's count.
        failures = (
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=User.failed_logins + 1)
                .returning(User.failed_logins)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        locked = failures >= config.login_max_failures
        if locked:
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=0, locked_until=now + timedelta(seconds=config.lockout_seconds))
                .execution_options(synchronize_session=False)
            )
        await session.commit()
        reason = "bad_password" if not ok else "inactive"
        await _audit_all(db, tenants, "auth.login_failed", user, context, "denied", {"reason": reason})
        if locked:
            await _audit_all(db, tenants, "auth.locked", user, context, "denied")
        raise Unauthorized(SIGN_IN_FAILED)
    user.failed_logins = 0
    user.locked_until = None
    return user, tenants


async def start_session(
    session: AsyncSession,
    signer: TokenSigner,
    config: ApiSettings,
    user: User,
    tenants: list[TenantRole],
) -> TokenPair:
    """A new sign-in (refresh family) for ``user``, added to ``session`` (the caller commits)."""
    family_id = new_id()
    access, refresh = await _issue(session, signer, config, user, family_id)
    return TokenPair(user, tenants, access, refresh, family_id, signer.ttl_seconds)


def _pairs(tenants: list[TenantRole]) -> list[tuple[str, str]]:
    return [(t.id, t.role) for t in tenants]


async def begin_sign_in(
    session: AsyncSession,
    signer: TokenSigner,
    config: ApiSettings,
    user: User,
    tenants: list[TenantRole],
) -> TokenPair | MfaPending:
    """After a good password: a session, or the MFA challenge the user's factor or their
    tenants' policy calls for (added to ``session``; the caller commits)."""
    challenge = await mfa.challenge_for(session, config, user_id=user.id, memberships=_pairs(tenants))
    if challenge is not None:
        return MfaPending(user, tenants, challenge)
    return await start_session(session, signer, config, user, tenants)


async def audit_challenge(db: Database, pending: MfaPending, context: AuditContext) -> None:
    """Record that a password sign-in now waits for its second step."""
    details = {"step": pending.challenge.purpose, "required_by": pending.challenge.required_by}
    await _audit_all(db, pending.tenants, "auth.mfa_challenged", pending.user, context, details=details)


async def login(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    email: str,
    password: str,
    context: AuditContext,
) -> TokenPair | MfaPending:
    """Check e-mail and password (:func:`verify_credentials`) and start a sign-in, or hand out
    its MFA challenge (:func:`begin_sign_in`)."""
    async with db.system_scope() as session:
        user, tenants = await verify_credentials(db, session, config, email=email, password=password, context=context)
        sso_only = await sso_only_tenants(session, tenants)
        if not sso_only:
            result = await begin_sign_in(session, signer, config, user, tenants)
            await session.commit()
    if sso_only:
        await refuse_password_session(db, tenants, user, context, sso_only)
    if isinstance(result, MfaPending):
        await audit_challenge(db, result, context)
        return result
    await _audit_all(db, tenants, "auth.login", user, context)
    return result


async def _challenge_user(
    session: AsyncSession, token: str, purpose: str
) -> tuple[MfaChallenge, User, list[TenantRole]]:
    row = await mfa.load_challenge(session, token, purpose=purpose)
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized(mfa.CHALLENGE_GONE, details={"field": "challenge"})
    return row, user, await memberships_of(session, user.id)


async def complete_mfa(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    challenge: str,
    code: str,
    context: AuditContext,
) -> TokenPair:
    """The sign-in a ``verify`` challenge waits for, for a TOTP or recovery code."""
    async with db.system_scope() as session:
        row, user, tenants = await _challenge_user(session, challenge, mfa.PURPOSE_VERIFY)
        method = await mfa.check_code(
            db,
            session,
            config,
            user_id=user.id,
            code=code,
            tenant_ids=[t.id for t in tenants],
            context=context,
            challenge=row,
        )
        await mfa.consume_challenge(session, row)
        pair = await start_session(session, signer, config, user, tenants)
        await session.commit()
    if method == "recovery":
        await _audit_all(db, tenants, "auth.mfa_recovery_used", user, context)
    await _audit_all(db, tenants, "auth.login", user, context, details={"mfa": method})
    return pair


async def enrol_with_challenge(
    db: Database, config: ApiSettings, *, challenge: str, context: AuditContext
) -> mfa.Enrolment:
    """Start TOTP enrolment for the user an ``enroll`` challenge names (they have no session)."""
    async with db.system_scope() as session:
        _, user, tenants = await _challenge_user(session, challenge, mfa.PURPOSE_ENROLL)
        return await mfa.begin_enrolment(
            db,
            session,
            config,
            user_id=user.id,
            email=user.email,
            tenant_ids=[t.id for t in tenants],
            context=context,
        )


async def confirm_enrolment(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    challenge: str,
    code: str,
    context: AuditContext,
) -> tuple[TokenPair, list[str]]:
    """Confirm the enrolment an ``enroll`` challenge started and sign in; with the recovery codes."""
    async with db.system_scope() as session:
        row, user, tenants = await _challenge_user(session, challenge, mfa.PURPOSE_ENROLL)
        codes = await mfa.confirm_enrolment(
            db,
            session,
            config,
            user_id=user.id,
            code=code,
            tenant_ids=[t.id for t in tenants],
            context=context,
            challenge=row,
        )
        await mfa.consume_challenge(session, row)
        pair = await start_session(session, signer, config, user, tenants)
        await session.commit()
    await _audit_all(db, tenants, "auth.mfa_confirmed", user, context, details={"method": "totp"})
    await _audit_all(db, tenants, "auth.login", user, context, details={"mfa": "totp"})
    return pair, codes


async def sso_only_tenants(session: AsyncSession, tenants: list[TenantRole]) -> list[str]:
    """Slugs of the user's tenants that allow sign-in only by SSO.

    A session covers every tenant of the user, so one such tenant refuses the password sign-in.
    Checked after the password (a wrong one gets the usual answer: this tells a guesser nothing).
    """
    rows = await session.execute(
        select(Tenant.slug)
        .join(SsoConfig, SsoConfig.tenant_id == Tenant.id)
        .where(
            SsoConfig.tenant_id.in_([t.id for t in tenants]),
            SsoConfig.enabled.is_(True),
            SsoConfig.sso_only.is_(True),
        )
        .order_by(Tenant.slug)
    )
    return [slug for (slug,) in rows.all()]


async def refuse_password_session(
    db: Database, tenants: list[TenantRole], user: User, context: AuditContext, slugs: list[str]
) -> NoReturn:
    """Refuse a session by password to a member of SSO-only tenants (``slugs``), audited."""
    await _audit_all(db, tenants, "auth.login_failed", user, context, "denied", {"reason": "sso_required"})
    raise sso_required(slugs)


def sso_required(slugs: list[str]) -> Forbidden:
    return Forbidden(
        f"tenant {slugs[0]!r} allows sign-in only by SSO: use 'Sign in with SSO'",
        details={"reason": "sso_required", "tenants": slugs, "sso_start": f"/api/v1/auth/sso/{slugs[0]}/start"},
    )


async def refresh(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    refresh_token: str,
    context: AuditContext,
) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
    async with db.system_scope() as session:
        row = (
            await session.execute(select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token)))
        ).scalar_one_or_none()
        if row is None:
            raise Unauthorized("invalid refresh token")
        user = await session.get(User, row.user_id)
        now = utcnow()
        if row.used_at is not None or row.revoked_at is not None:
            reused = row.used_at is not None and row.revoked_at is None
            await revoke_family(session, row.family_id)
            await session.commit()
            if reused and user is not None:
                tenants = await memberships_of(session, user.id)
                await _audit_all(
                    db, tenants, "auth.refresh_reused", user, context, "denied", {"family_id": row.family_id}
                )
            raise Unauthorized("refresh token already used; the session has been revoked")
        if row.expires_at <= now or user is None or not user.is_active:
            raise Unauthorized("refresh token expired")
        # Compare-and-set, so two concurrent refreshes with one token cannot both succeed.
        claimed = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(claimed) != 1:
            await session.rollback()
            raise Unauthorized("refresh token already used")
        access, new_refresh = await _issue(session, signer, config, user, row.family_id)
        await session.commit()
        tenants = await memberships_of(session, user.id)
    await _audit_all(db, tenants, "auth.refresh", user, context)
    return TokenPair(user, tenants, access, new_refresh, row.family_id, signer.ttl_seconds)


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    """Revoke every refresh token (and so every access token) of a sign-in."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def family_revoked(session: AsyncSession, family_id: str) -> bool:
    """Whether the sign-in an access token came from has been revoked."""
    row = (
        await session.execute(
            select(RefreshToken.id)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
            .limit(1)
        )
    ).first()
    return row is not None


async def logout(db: Database, *, user_id: str, family_id: str, tenant_id: str | None, context: AuditContext) -> None:
    """End a sign-in: its refresh tokens, access tokens and session cookie stop working."""
    async with db.system_scope() as session:
        await revoke_family(session, family_id)
        await session.commit()
    if tenant_id:
        await audit.record_now(
            db, tenant_id=tenant_id, action="auth.logout", context=context, resource_type="user", resource_id=user_id
        )
