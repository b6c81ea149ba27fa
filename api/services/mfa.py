"""Multi-factor authentication: TOTP enrolment, codes, recovery codes, sign-in challenges and
each tenant's MFA policy.

The TOTP secret is sealed (AES-256-GCM, :mod:`blocks.envelope`) under a Gorax-wide data key kept
wrapped in its own keyring (``gorax_keyring__gorax-mfa``, re-wrapped by ``gorax keys rotate``
like a tenant's), bound to the user it belongs to: it is shown once, at enrolment, and never
stored or answered in clear. Recovery codes are stored as hashes and work once each.

A code is accepted for the current 30-second step and one step either side; a code of a step
no later than the last accepted one is refused (no replay). Wrong codes count per sign-in step
(:class:`api.models.mfa.MfaChallenge`, void after ``mfa_challenge_max_attempts``) and per user
(``login_max_failures`` in a row lock the factor for ``lockout_seconds``), whether the code was
sent to sign in or to change the factor from a signed-in session.

Policy: a tenant requires MFA of nobody (``off``), of every member (``all``) or of the members
with given roles (``roles``). A sign-in is one session for every tenant of the user, so the
strictest of their memberships applies: MFA is required when any one of their tenants requires
it of their role there.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pyotp
import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.tokens import digest, new_secret
from api.config import ApiSettings
from api.db.base import affected_rows, utcnow
from api.db.engine import Database
from api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from api.models.identity import Membership, Tenant
from api.models.mfa import MfaChallenge, RecoveryCode, TenantMfaPolicy, UserTotp
from api.services import audit
from api.services.audit import AuditContext
from blocks import envelope, keys

#: The keyring of the data key that seals TOTP secrets (not a tenant's: a user spans tenants).
MFA_KEYRING = "gorax-mfa"
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_STEP_SECONDS = 30
#: Steps either side of the current one a code may be of (clock drift, typing time).
VALID_WINDOW = 1

PURPOSE_VERIFY = "verify"
PURPOSE_ENROLL = "enroll"
POLICY_MODES = ("off", "all", "roles")
#: What a wrong code answers to a signed-in session (403: the session stays good; a 401 would
#: tell clients it ended).
CODE_REJECTED: type[ApiError] = Forbidden
#: What a stale, used or void sign-in step answers.
CHALLENGE_GONE = "this sign-in step has expired or was already used: sign in again"


@dataclass(frozen=True)
class Enrolment:
    """What starting TOTP enrolment shows, once: the secret, its otpauth URI and a QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class IssuedChallenge:
    """A sign-in step handed out instead of a session."""

    token: str
    purpose: str
    expires_in: int
    required_by: list[str]


@dataclass(frozen=True)
class Status:
    """A user's MFA state (never the secret)."""

    totp_enabled: bool
    totp_pending: bool
    confirmed_at: datetime | None
    recovery_codes_left: int
    required_by: list[str]


@dataclass(frozen=True)
class Policy:
    """A tenant's MFA policy."""

    mode: str
    roles: list[str]
    updated_at: datetime | None
    updated_by: str | None
    members_without_mfa: int


# --- sealing -------------------------------------------------------------------------------


def _where(user_id: str) -> envelope.SealContext:
    return envelope.SealContext(MFA_KEYRING, f"user-{user_id}", "totp_secret")


async def _seal(user_id: str, secret: str) -> str:
    key_id, key = await keys.current_data_key(tenant_id=MFA_KEYRING, tenant_slug=MFA_KEYRING)
    return envelope.seal(secret, key=key, key_id=key_id, where=_where(user_id))


async def _open(user_id: str, sealed: str) -> str:
    where = _where(user_id)
    parsed = envelope.parse(sealed, where)
    key = await keys.data_key(tenant_id=MFA_KEYRING, key_id=parsed.key_id)
    return envelope.open_sealed(parsed, key=key, where=where)


# --- audit ---------------------------------------------------------------------------------


async def audit_user(
    db: Database,
    tenant_ids: Sequence[str],
    action: str,
    user_id: str,
    context: AuditContext,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` of ``user_id`` in the audit log of each of their tenants."""
    context = replace(context, actor_type="user", actor_id=user_id)
    for tenant_id in tenant_ids:
        await audit.record_now(
            db,
            tenant_id=tenant_id,
            action=action,
            context=context,
            resource_type="user",
            resource_id=user_id,
            outcome=outcome,
            details=details,
        )


# --- policy --------------------------------------------------------------------------------


def _requires(policy: TenantMfaPolicy | None, role: str) -> bool:
    if policy is None or policy.mode == "off":
        return False
    return policy.mode == "all" or role in (policy.roles or [])


async def required_by(session: AsyncSession, memberships: Sequence[tuple[str, str]]) -> list[str]:
    """Slugs of the tenants, among ``memberships`` ((tenant id, role) pairs), whose policy
    requires MFA of the user's role there (system session)."""
    roles = dict(memberships)
    if not roles:
        return []
    rows = await session.execute(
        select(TenantMfaPolicy, Tenant.slug)
        .join(Tenant, Tenant.id == TenantMfaPolicy.tenant_id)
        .where(TenantMfaPolicy.tenant_id.in_(list(roles)))
    )
    return sorted(slug for policy, slug in rows.all() if _requires(policy, roles[policy.tenant_id]))


async def get_policy(session: AsyncSession, *, tenant_id: str) -> Policy:
    """The tenant's policy, with how many members it would ask for MFA who have none yet."""
    policy = (
        await session.execute(select(TenantMfaPolicy).where(TenantMfaPolicy.tenant_id == tenant_id))
    ).scalar_one_or_none()
    members = (await session.execute(select(Membership).where(Membership.tenant_id == tenant_id))).scalars().all()
    affected = [m.user_id for m in members if _requires(policy, m.role)]
    enrolled: set[str] = set()
    if affected:
        enrolled = set(
            (
                await session.execute(
                    select(UserTotp.user_id).where(UserTotp.user_id.in_(affected), UserTotp.confirmed_at.is_not(None))
                )
            ).scalars()
        )
    if policy is None:
        return Policy("off", [], None, None, 0)
    return Policy(
        policy.mode, list(policy.roles or []), policy.updated_at, policy.updated_by, len(set(affected) - enrolled)
    )


async def set_policy(
    session: AsyncSession, *, tenant_id: str, mode: str, roles: Sequence[str], context: AuditContext
) -> Policy:
    """Replace the tenant's policy (audited with before and after); rejects roles without
    ``roles`` mode and ``roles`` mode without roles, naming the field."""
    if mode not in POLICY_MODES:
        raise BadRequest(f"mode must be one of {', '.join(POLICY_MODES)}", details={"field": "mode"})
    wanted = sorted(set(roles))
    if mode == "roles" and not wanted:
        raise BadRequest("mode 'roles' needs at least one role in roles", details={"field": "roles"})
    if mode != "roles" and wanted:
        raise BadRequest(f"roles apply only to mode 'roles', not {mode!r}", details={"field": "roles"})
    before = await get_policy(session, tenant_id=tenant_id)
    row = (
        await session.execute(select(TenantMfaPolicy).where(TenantMfaPolicy.tenant_id == tenant_id))
    ).scalar_one_or_none()
    if row is None:
        row = TenantMfaPolicy(tenant_id=tenant_id, mode=mode, roles=wanted)
        session.add(row)
    row.mode, row.roles = mode, wanted
    row.updated_at = utcnow()
    row.updated_by = f"{context.actor_type}:{context.actor_id}"
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="tenant.mfa_policy_changed",
        context=context,
        resource_type="tenant",
        resource_id=tenant_id,
        before={"mode": before.mode, "roles": before.roles},
        after={"mode": mode, "roles": wanted},
    )
    await session.commit()
    return await get_policy(session, tenant_id=tenant_id)


# --- codes ---------------------------------------------------------------------------------


def _step_of(secret: str, code: str, now: datetime) -> int | None:
    """The step (within the window) whose code ``code`` is, or None."""
    totp = pyotp.TOTP(secret, interval=_STEP_SECONDS)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            return step
    return None


def _is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def _normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _recovery_hash(user_id: str, code: str) -> str:
    return digest(f"{user_id}:{_normalize_recovery(code)}")


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def _replace_recovery_codes(session: AsyncSession, user_id: str) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(user_id, c)) for c in codes)
    return codes


async def _factor(session: AsyncSession, user_id: str) -> UserTotp | None:
    # populate_existing: counters change in SQL, so never trust a copy already in the session.
    query = select(UserTotp).where(UserTotp.user_id == user_id).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def check_code(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    code: str,
    tenant_ids: Sequence[str],
    context: AuditContext,
    challenge: MfaChallenge | None = None,
    recovery: bool = True,
    pending: bool = False,
    failure: type[ApiError] = Unauthorized,
) -> str:
    """Check a TOTP code (or, with ``recovery``, a recovery code) of ``user_id``; returns
    ``totp`` or ``recovery``. ``pending`` checks the not yet confirmed factor (enrolment).

    A wrong, replayed or used code raises ``failure`` after counting it against the challenge
    and the user (committed, audited as ``auth.mfa_failed``); past the limits the challenge is
    void and the factor locked (``auth.mfa_locked``, 429 until ``locked_until``). On success
    the accepted step or recovery code is claimed in ``session`` (the caller commits).
    """
    code = code.strip().replace(" ", "")
    factor = await _factor(session, user_id)
    if factor is None or (factor.confirmed_at is None) != pending:
        raise NotFound("no TOTP factor to check this code against" if not pending else "no TOTP enrolment pending")
    now = utcnow()
    locked_until = factor.locked_until
    if locked_until is not None and locked_until > now:
        await audit_user(db, tenant_ids, "auth.mfa_failed", user_id, context, "denied", {"reason": "locked"})
        raise RateLimited(
            "too many wrong codes: MFA is locked for this account; try again later",
            details={"field": "code", "locked_until": locked_until.isoformat()},
            headers={"Retry-After": str(max(1, int((locked_until - now).total_seconds())))},
        )
    method, reason = "totp", "wrong_code"
    accepted = False
    if _is_totp_code(code):
        step = _step_of(await _open(user_id, factor.secret_sealed), code, now)
        if step is not None:
            claimed = await session.execute(
                update(UserTotp)
                .where(UserTotp.user_id == user_id)
                .where((UserTotp.last_step.is_(None)) | (UserTotp.last_step < step))
                .values(last_step=step, failures=0)
                .execution_options(synchronize_session=False)
            )
            accepted = affected_rows(claimed) == 1
            reason = "replayed" if not accepted else reason
    elif recovery and not pending:
        method = "recovery"
        claimed = await session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == _recovery_hash(user_id, code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        accepted = affected_rows(claimed) == 1
        if accepted:
            await session.execute(
                update(UserTotp)
                .where(UserTotp.user_id == user_id)
                .values(failures=0)
                .execution_options(synchronize_session=False)
            )
    if accepted:
        return method
    challenge_id = challenge.id if challenge is not None else None
    await session.rollback()
    locked = await _count_failure(session, config, user_id=user_id, challenge_id=challenge_id, now=now)
    await audit_user(
        db, tenant_ids, "auth.mfa_failed", user_id, context, "denied", {"reason": reason, "method": method}
    )
    if locked:
        await audit_user(db, tenant_ids, "auth.mfa_locked", user_id, context, "denied")
    message = "that code was already used: wait for the next one" if reason == "replayed" else "wrong code"
    raise failure(message, details={"field": "code", "locked": locked})


async def _count_failure(
    session: AsyncSession, config: ApiSettings, *, user_id: str, challenge_id: str | None, now: datetime
) -> bool:
    """Count a wrong code against the user and the challenge (committed); whether this locked
    the user's factor."""
    # Increments in SQL so concurrent guesses cannot overwrite each other's count.
    failures = (
        await session.execute(
            update(UserTotp)
            .where(UserTotp.user_id == user_id)
            .values(failures=UserTotp.failures + 1)
            .returning(UserTotp.failures)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    locked = failures >= config.login_max_failures
    if locked:
        await session.execute(
            update(UserTotp)
            .where(UserTotp.user_id == user_id)
            .values(failures=0, locked_until=now + timedelta(seconds=config.lockout_seconds))
            .execution_options(synchronize_session=False)
        )
    if challenge_id is not None:
        attempts = (
            await session.execute(
                update(MfaChallenge)
                .where(MfaChallenge.id == challenge_id)
                .values(attempts=MfaChallenge.attempts + 1)
                .returning(MfaChallenge.attempts)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        if attempts >= config.mfa_challenge_max_attempts:
            await session.execute(
                update(MfaChallenge)
                .where(MfaChallenge.id == challenge_id)
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
    await session.commit()
    return locked


# --- enrolment and the factor ----------------------------------------------------------------


async def status(session: AsyncSession, *, user_id: str, memberships: Sequence[tuple[str, str]]) -> Status:
    """The user's MFA state and which tenants require it of them."""
    factor = await _factor(session, user_id)
    left = (
        await session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
    ).scalar_one()
    confirmed = factor is not None and factor.confirmed_at is not None
    return Status(
        totp_enabled=confirmed,
        totp_pending=factor is not None and not confirmed,
        confirmed_at=factor.confirmed_at if factor is not None else None,
        recovery_codes_left=int(left) if confirmed else 0,
        required_by=await required_by(session, memberships),
    )


async def begin_enrolment(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    email: str,
    tenant_ids: Sequence[str],
    context: AuditContext,
) -> Enrolment:
    """A new TOTP secret for the user, pending until a code confirms it (replacing any pending
    one). Conflict when TOTP is already on: turn it off first."""
    factor = await _factor(session, user_id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("TOTP is already on for this account: turn it off first to enrol a new authenticator")
    secret = pyotp.random_base32()
    sealed = await _seal(user_id, secret)
    if factor is None:
        session.add(UserTotp(user_id=user_id, secret_sealed=sealed, failures=0))
    else:
        factor.secret_sealed, factor.created_at, factor.last_step = sealed, utcnow(), None
    await session.commit()
    uri = pyotp.TOTP(secret, interval=_STEP_SECONDS).provisioning_uri(name=email, issuer_name=config.mfa_issuer)
    await audit_user(db, tenant_ids, "auth.mfa_enrolled", user_id, context, details={"method": "totp"})
    qr = segno.make(uri, error="m").svg_data_uri(scale=4)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr)


async def confirm_enrolment(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    code: str,
    tenant_ids: Sequence[str],
    context: AuditContext,
    challenge: MfaChallenge | None = None,
    failure: type[ApiError] = Unauthorized,
) -> list[str]:
    """Turn the pending factor on with a first good code; returns the recovery codes (shown
    once). Added to ``session``; the caller commits, then audits ``auth.mfa_confirmed``."""
    await check_code(
        db,
        session,
        config,
        user_id=user_id,
        code=code,
        tenant_ids=tenant_ids,
        context=context,
        challenge=challenge,
        recovery=False,
        pending=True,
        failure=failure,
    )
    await session.execute(
        update(UserTotp)
        .where(UserTotp.user_id == user_id)
        .values(confirmed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return await _replace_recovery_codes(session, user_id)


async def disable(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    code: str,
    memberships: Sequence[tuple[str, str]],
    context: AuditContext,
) -> None:
    """Turn TOTP off with a current code or a recovery code; refused while a tenant of the user
    requires MFA of them (its admin changes the policy first)."""
    tenant_ids = [t for t, _ in memberships]
    requiring = await required_by(session, memberships)
    if requiring:
        raise Forbidden(
            f"MFA is required by tenant(s) {', '.join(requiring)}: it cannot be turned off",
            details={"required_by": requiring},
        )
    method = await check_code(
        db, session, config, user_id=user_id, code=code, tenant_ids=tenant_ids, context=context, failure=CODE_REJECTED
    )
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    await session.execute(delete(UserTotp).where(UserTotp.user_id == user_id))
    await session.commit()
    if method == "recovery":
        await audit_user(db, tenant_ids, "auth.mfa_recovery_used", user_id, context)
    await audit_user(db, tenant_ids, "auth.mfa_disabled", user_id, context, details={"method": "totp"})


async def regenerate_recovery_codes(
    db: Database,
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    code: str,
    tenant_ids: Sequence[str],
    context: AuditContext,
) -> list[str]:
    """New recovery codes (the old ones stop working) for a current TOTP code."""
    await check_code(
        db,
        session,
        config,
        user_id=user_id,
        code=code,
        tenant_ids=tenant_ids,
        context=context,
        recovery=False,
        failure=CODE_REJECTED,
    )
    codes = await _replace_recovery_codes(session, user_id)
    await session.commit()
    await audit_user(db, tenant_ids, "auth.mfa_recovery_regenerated", user_id, context)
    return codes


# --- sign-in challenges ----------------------------------------------------------------------


async def challenge_for(
    session: AsyncSession,
    config: ApiSettings,
    *,
    user_id: str,
    memberships: Sequence[tuple[str, str]],
) -> IssuedChallenge | None:
    """The second step a password sign-in of ``user_id`` needs, or None (a session at once).

    ``verify`` when the user has TOTP on; ``enroll`` when a tenant requires MFA of them and they
    have none yet. Added to ``session``; the caller commits.
    """
    factor = await _factor(session, user_id)
    requiring = await required_by(session, memberships)
    if factor is not None and factor.confirmed_at is not None:
        purpose = PURPOSE_VERIFY
    elif requiring:
        purpose = PURPOSE_ENROLL
    else:
        return None
    token = new_secret()
    ttl = config.mfa_challenge_ttl_seconds
    session.add(
        MfaChallenge(
            user_id=user_id,
            token_hash=digest(token),
            purpose=purpose,
            attempts=0,
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    return IssuedChallenge(token=token, purpose=purpose, expires_in=ttl, required_by=requiring)


async def load_challenge(session: AsyncSession, token: str, *, purpose: str) -> MfaChallenge:
    """The live challenge ``token`` names, of ``purpose``; Unauthorized otherwise."""
    row = (
        await session.execute(select(MfaChallenge).where(MfaChallenge.token_hash == digest(token)))
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise Unauthorized(CHALLENGE_GONE, details={"field": "challenge"})
    if row.purpose != purpose:
        raise Unauthorized(f"this sign-in step is for {row.purpose!r}, not {purpose!r}", details={"field": "challenge"})
    return row


async def consume_challenge(session: AsyncSession, challenge: MfaChallenge) -> None:
    """Mark the challenge used (compare-and-set: a second use fails) in ``session``."""
    claimed = await session.execute(
        update(MfaChallenge)
        .where(MfaChallenge.id == challenge.id, MfaChallenge.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if affected_rows(claimed) != 1:
        await session.rollback()
        raise Unauthorized(CHALLENGE_GONE, details={"field": "challenge"})
