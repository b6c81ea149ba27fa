"""Single sign-on by OpenID Connect: a tenant's provider, and signing people in through it.

The protocol pieces are authlib's (authorization URL, PKCE S256, token request, ID token claims
validation with joserfc); every call to the provider (discovery, JWKS, token, userinfo) goes
through the outbound guard of :mod:`flows.net`, so a provider on a private or loopback address
must be allowed by ``GORAX_HTTP_ALLOWED_NETWORKS``.

A sign-in: ``begin`` stores the flow's ``state`` (hashed), nonce and PKCE verifier server-side,
bound to a random browser cookie, for ten minutes; ``complete`` consumes that row once, trades
the code for tokens, validates the ID token (signature against the provider's JWKS, issuer,
audience, expiry, nonce, at_hash), checks ``email_verified`` and the allowed domains, maps the
role, creates or links the user and starts an ordinary Gorax session. Every outcome is audited
in the tenant (``auth.sso_login`` / ``auth.sso_login_failed`` with a reason); the provider's
tokens are used once and never stored, logged or returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Role
from api.auth.tokens import TokenSigner, digest
from api.config import ApiSettings
from api.db.base import affected_rows, utcnow
from api.db.engine import Database
from api.errors import BadRequest, NotFound
from api.models.identity import Membership, Tenant, User
from api.models.sso import SsoConfig, SsoIdentity, SsoLoginState
from api.services import audit
from api.services.audit import AuditContext
from api.services.auth import TenantRole, TokenPair, memberships_of, start_session
from api.services.identity import normalize_email
from blocks import envelope, keys
from flows import net
from flows.errors import RunError

#: How long a sign-in may take between ``/start`` and ``/callback``.
STATE_TTL_SECONDS = 600
#: Provider metadata and keys are re-read after this long (and at once on an unknown key id).
METADATA_TTL_SECONDS = 300
#: Clock skew allowed on the ID token's times.
LEEWAY_SECONDS = 60
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.EDITOR: 2, Role.ADMIN: 3}
_SEAL_WHERE = ("sso", "client_secret")
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class SsoFailure(Exception):
    """A refused SSO sign-in: ``reason`` is the short code the sign-in page and the audit show."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SsoSettings:
    """A tenant's SSO configuration as admins see it (the secret only as whether it is set)."""

    enabled: bool
    discovery_url: str
    client_id: str
    client_secret_set: bool
    scopes: str
    allowed_domains: list[str]
    role_claim: str
    role_mapping: dict[str, str]
    default_role: str | None
    jit_enabled: bool
    sso_only: bool
    updated_at: Any


def _view(row: SsoConfig) -> SsoSettings:
    return SsoSettings(
        enabled=row.enabled,
        discovery_url=row.discovery_url,
        client_id=row.client_id,
        client_secret_set=bool(row.client_secret_sealed),
        scopes=row.scopes,
        allowed_domains=list(row.allowed_domains or []),
        role_claim=row.role_claim,
        role_mapping=dict(row.role_mapping or {}),
        default_role=row.default_role,
        jit_enabled=row.jit_enabled,
        sso_only=row.sso_only,
        updated_at=row.updated_at,
    )


def _audit_view(settings: SsoSettings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    data = {k: v for k, v in settings.__dict__.items() if k != "updated_at"}
    return data  # client_secret_set is a boolean: the secret itself never reaches the audit log


async def _config(session: AsyncSession, tenant_id: str) -> SsoConfig | None:
    return (await session.execute(select(SsoConfig).where(SsoConfig.tenant_id == tenant_id))).scalar_one_or_none()


async def get_settings(session: AsyncSession, *, tenant_id: str) -> SsoSettings:
    """The tenant's SSO configuration; NotFound when it has none."""
    row = await _config(session, tenant_id)
    if row is None:
        raise NotFound("this tenant has no SSO configuration", details={"resource": "sso"})
    return _view(row)


def _where(tenant_id: str) -> envelope.SealContext:
    return envelope.SealContext(tenant_id=tenant_id, credential=_SEAL_WHERE[0], field=_SEAL_WHERE[1])


async def _seal_secret(tenant_id: str, tenant_slug: str, secret: str) -> str:
    key_id, key = await keys.current_data_key(tenant_id=tenant_id, tenant_slug=tenant_slug)
    return envelope.seal(secret, key=key, key_id=key_id, where=_where(tenant_id))


async def _open_secret(tenant_id: str, sealed: str) -> str:
    where = _where(tenant_id)
    parsed = envelope.parse(sealed, where)
    key = await keys.data_key(tenant_id=tenant_id, key_id=parsed.key_id)
    return envelope.open_sealed(parsed, key=key, where=where)


async def put_settings(
    session: AsyncSession,
    *,
    tenant_id: str,
    values: dict[str, Any],
    client_secret: str | None,
    context: AuditContext,
) -> SsoSettings:
    """Create or replace the tenant's SSO configuration (the secret is kept when not given)."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    row = await _config(session, tenant_id)
    before = _audit_view(_view(row)) if row is not None else None
    if row is None and not client_secret:
        raise BadRequest("client_secret is required when SSO is first configured", details={"field": "client_secret"})
    if row is None:
        row = SsoConfig(tenant_id=tenant_id, client_secret_sealed="")
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    if client_secret:
        row.client_secret_sealed = await _seal_secret(tenant_id, tenant.slug, client_secret)
    row.updated_at = utcnow()
    await session.flush()
    after = _view(row)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="sso.configured" if before is None else "sso.updated",
        context=context,
        resource_type="sso",
        resource_id=row.id,
        before=before,
        after=_audit_view(after),
        details={"client_secret_changed": bool(client_secret)},
    )
    await session.commit()
    return after


async def delete_settings(session: AsyncSession, *, tenant_id: str, context: AuditContext) -> None:
    """Remove the tenant's SSO configuration (password sign-in is allowed again)."""
    row = await _config(session, tenant_id)
    if row is None:
        raise NotFound("this tenant has no SSO configuration", details={"resource": "sso"})
    before = _audit_view(_view(row))
    await session.delete(row)
    await session.execute(delete(SsoLoginState).where(SsoLoginState.tenant_id == tenant_id))
    await audit.record(
        session, tenant_id=tenant_id, action="sso.deleted", context=context, resource_type="sso", before=before
    )
    await session.commit()


async def tenant_for_domain(db: Database, domain: str) -> str | None:
    """The slug of the one enabled SSO tenant that lists ``domain`` (None: none or several)."""
    domain = domain.strip().lower()
    async with db.system_scope() as session:
        rows = (
            await session.execute(
                select(Tenant.slug, SsoConfig.allowed_domains)
                .join(SsoConfig, SsoConfig.tenant_id == Tenant.id)
                .where(SsoConfig.enabled.is_(True))
            )
        ).all()
    found = [slug for slug, domains in rows if domain in [d.lower() for d in (domains or [])]]
    return found[0] if len(found) == 1 else None


# -- provider metadata -----------------------------------------------------------------------

_metadata_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def _get_json(url: str, *, allowed: list[Any], what: str, headers: dict[str, str] | None = None) -> Any:
    try:
        reply = await net.send("GET", url, allowed=allowed, headers=headers, timeout=15, max_bytes=1024 * 1024)
    except (RunError, httpx.HTTPError, OSError) as exc:
        raise SsoFailure("provider_unreachable", f"{what} at {url}: {exc}") from exc
    if reply.status != 200:
        raise SsoFailure("provider_error", f"{what} at {url} answered HTTP {reply.status}")
    try:
        return httpx.Response(200, content=reply.content).json()
    except ValueError as exc:
        raise SsoFailure("provider_error", f"{what} at {url} is not JSON") from exc


async def provider_metadata(discovery_url: str, *, allowed: list[Any], fresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document (cached for a few minutes)."""
    cached = _metadata_cache.get(discovery_url)
    if cached and not fresh and cached[0] > time.monotonic():
        return cached[1]
    data = await _get_json(discovery_url, allowed=allowed, what="discovery document")
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(data, dict) or not isinstance(data.get(name), str):
            raise SsoFailure("provider_error", f"discovery document at {discovery_url} has no {name!r}")
    _metadata_cache[discovery_url] = (time.monotonic() + METADATA_TTL_SECONDS, data)
    return data


async def _jwks(uri: str, *, allowed: list[Any], fresh: bool) -> KeySet:
    cached = _jwks_cache.get(uri)
    if cached and not fresh and cached[0] > time.monotonic():
        data = cached[1]
    else:
        data = await _get_json(uri, allowed=allowed, what="JWKS")
        _jwks_cache[uri] = (time.monotonic() + METADATA_TTL_SECONDS, data)
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SsoFailure("provider_error", f"JWKS at {uri} is not a valid key set") from exc


# -- the sign-in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the value of the browser-binding cookie."""

    authorize_url: str
    browser_secret: str


async def _tenant_and_config(session: AsyncSession, tenant_slug: str) -> tuple[Tenant, SsoConfig]:
    tenant = (await session.execute(select(Tenant).where(Tenant.slug == tenant_slug))).scalar_one_or_none()
    if tenant is None:
        raise SsoFailure("unknown_tenant", f"no tenant {tenant_slug!r}")
    row = await _config(session, tenant.id)
    if row is None or not row.enabled:
        raise SsoFailure("not_configured", f"tenant {tenant_slug!r} has no enabled SSO")
    return tenant, row


async def tenant_id_of(db: Database, tenant_slug: str) -> str | None:
    """The id of the tenant with this slug (for auditing a failure), if any."""
    async with db.system_scope() as session:
        return (await session.execute(select(Tenant.id).where(Tenant.slug == tenant_slug))).scalar_one_or_none()


def safe_next(path: str | None) -> str:
    """A same-site path to land on after sign-in ("/" unless ``path`` is one)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or "\n" in path:
        return "/"
    return path[:2000]


async def begin(
    db: Database, *, tenant_slug: str, redirect_uri: str, next_path: str | None, allowed: list[Any]
) -> Started:
    """Start a sign-in: store its state, return the provider's authorization URL."""
    async with db.system_scope() as session:
        tenant, row = await _tenant_and_config(session, tenant_slug)
        tenant_id, discovery_url, client_id, scopes = tenant.id, row.discovery_url, row.client_id, row.scopes
        await session.execute(delete(SsoLoginState).where(SsoLoginState.expires_at < utcnow()))
        await session.commit()
    metadata = await provider_metadata(discovery_url, allowed=allowed)
    state, nonce, verifier, browser = generate_token(32), generate_token(32), generate_token(64), generate_token(32)
    async with db.system_scope() as session:
        session.add(
            SsoLoginState(
                tenant_id=tenant_id,
                state_hash=digest(state),
                browser_hash=digest(browser),
                nonce=nonce,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
                next_path=safe_next(next_path),
                expires_at=utcnow() + timedelta(seconds=STATE_TTL_SECONDS),
            )
        )
        await session.commit()
    url = prepare_grant_uri(
        metadata["authorization_endpoint"],
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=scopes,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return Started(authorize_url=url, browser_secret=browser)


@dataclass(frozen=True)
class Completed:
    """A finished sign-in: the Gorax session and where to land."""

    pair: TokenPair
    tenant_id: str
    next_path: str
    user_created: bool


async def _consume_state(
    session: AsyncSession, tenant_id: str, state: str | None, browser: str | None
) -> SsoLoginState:
    if not state:
        raise SsoFailure("state", "the callback carries no state")
    row = (
        await session.execute(select(SsoLoginState).where(SsoLoginState.state_hash == digest(state)))
    ).scalar_one_or_none()
    if row is None or row.tenant_id != tenant_id:
        raise SsoFailure("state", "unknown or already used state")
    # Single use: whoever deletes the row owns the sign-in.
    gone = await session.execute(delete(SsoLoginState).where(SsoLoginState.id == row.id))
    await session.commit()
    if affected_rows(gone) != 1:
        raise SsoFailure("state", "state already used")
    if row.expires_at <= utcnow():
        raise SsoFailure("state", "the sign-in took longer than ten minutes")
    if not browser or digest(browser) != row.browser_hash:
        raise SsoFailure("state", "the sign-in was started in another browser")
    return row


async def _exchange_code(
    metadata: dict[str, Any], *, code: str, client_id: str, secret: str, flow: SsoLoginState, allowed: list[Any]
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.code_verifier,
    }
    basic = httpx.BasicAuth(client_id, secret)
    auth_header = next(basic.auth_flow(httpx.Request("POST", metadata["token_endpoint"]))).headers["Authorization"]
    try:
        reply = await net.send(
            "POST",
            metadata["token_endpoint"],
            allowed=allowed,
            data=form,
            headers={"Authorization": auth_header, "Accept": "application/json"},
            timeout=15,
            max_bytes=1024 * 1024,
        )
    except (RunError, httpx.HTTPError, OSError) as exc:
        raise SsoFailure("provider_unreachable", f"token endpoint: {exc}") from exc
    try:
        body = httpx.Response(200, content=reply.content).json()
    except ValueError:
        body = {}
    if reply.status != 200 or not isinstance(body, dict) or "id_token" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        raise SsoFailure("token_exchange", f"token endpoint answered HTTP {reply.status} {error or ''}".strip())
    return body


async def _id_token_claims(
    metadata: dict[str, Any], token: dict[str, Any], *, client_id: str, nonce: str, allowed: list[Any]
) -> dict[str, Any]:
    registry = JWSRegistry(algorithms=_ALGORITHMS)
    raw = token["id_token"]
    try:
        try:
            decoded = jwt.decode(
                raw, await _jwks(metadata["jwks_uri"], allowed=allowed, fresh=False), registry=registry
            )
        except JoseError:
            # Perhaps the provider rotated its keys: read them again once.
            decoded = jwt.decode(raw, await _jwks(metadata["jwks_uri"], allowed=allowed, fresh=True), registry=registry)
    except (JoseError, ValueError) as exc:
        raise SsoFailure("id_token", f"signature not verified by the provider's keys ({type(exc).__name__})") from exc
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "value": metadata["issuer"]}, "aud": {"essential": True, "value": client_id}},
        {"nonce": nonce, "client_id": client_id, "access_token": token.get("access_token")},
    )
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except (JoseError, ValueError) as exc:
        claim = getattr(exc, "claim", None) or getattr(exc, "description", "") or type(exc).__name__
        raise SsoFailure("id_token", f"claim check failed: {claim}") from exc
    return dict(claims)


async def _userinfo(metadata: dict[str, Any], access_token: str, *, allowed: list[Any]) -> dict[str, Any]:
    endpoint = metadata.get("userinfo_endpoint")
    if not endpoint or not access_token:
        return {}
    data = await _get_json(
        endpoint, allowed=allowed, what="userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    return data if isinstance(data, dict) else {}


def _verified(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def map_role(claims: dict[str, Any], *, role_claim: str, mapping: dict[str, str]) -> Role | None:
    """The highest role a value of ``role_claim`` maps to (None: no value maps)."""
    value: Any = claims
    for part in role_claim.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    values = value if isinstance(value, list) else [value] if value is not None else []
    roles = [Role(mapping[str(v)]) for v in values if str(v) in mapping]
    return max(roles, key=lambda r: _RANK[r]) if roles else None


async def _user_for(
    session: AsyncSession,
    *,
    row: SsoConfig,
    issuer: str,
    subject: str,
    email: str,
    name: str,
    mapped: Role | None,
) -> tuple[User, bool]:
    """The Gorax user behind this provider account, created or given a membership as allowed."""
    tenant_id = row.tenant_id
    identity = (
        await session.execute(
            select(SsoIdentity).where(
                SsoIdentity.tenant_id == tenant_id, SsoIdentity.issuer == issuer, SsoIdentity.subject == subject
            )
        )
    ).scalar_one_or_none()
    user = await session.get(User, identity.user_id) if identity is not None else None
    if user is None:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    created = False
    if user is None:
        if not row.jit_enabled:
            raise SsoFailure("no_account", f"no Gorax account for {email} and just-in-time creation is off")
        user = User(email=email, name=name[:200], password_hash=None)
        session.add(user)
        await session.flush()
        created = True
    if not user.is_active:
        raise SsoFailure("inactive", f"the account of {user.email} is disabled")
    membership = (
        await session.execute(
            select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    role = mapped or (Role(row.default_role) if row.default_role else None)
    if membership is None:
        if not row.jit_enabled:
            raise SsoFailure("not_member", f"{user.email} is not a member and just-in-time creation is off")
        if role is None:
            raise SsoFailure("no_role", f"no role maps from claim {row.role_claim!r} and there is no default role")
        session.add(Membership(tenant_id=tenant_id, user_id=user.id, role=role.value))
    elif mapped is not None and membership.role != mapped.value:
        # The provider's groups are the source of truth for the role they map to.
        membership.role = mapped.value
    elif mapped is None and row.default_role is None and row.role_mapping:
        raise SsoFailure("no_role", f"no role maps from claim {row.role_claim!r} and there is no default role")
    if identity is None:
        session.add(SsoIdentity(tenant_id=tenant_id, user_id=user.id, issuer=issuer, subject=subject, email=email))
    else:
        identity.last_login_at = utcnow()
        identity.email = email
    await session.flush()
    return user, created


async def complete(
    db: Database,
    signer: TokenSigner,
    config: ApiSettings,
    *,
    tenant_slug: str,
    code: str | None,
    state: str | None,
    error: str | None,
    browser_secret: str | None,
    allowed: list[Any],
    context: AuditContext,
) -> Completed:
    """Finish a sign-in from the provider's redirect; raises :class:`SsoFailure` (audited)."""
    async with db.system_scope() as session:
        tenant, row = await _tenant_and_config(session, tenant_slug)
        tenant_id = tenant.id
        flow = await _consume_state(session, tenant_id, state, browser_secret)
        if error:
            raise SsoFailure("provider_denied", f"the provider answered {error[:100]!r}")
        if not code:
            raise SsoFailure("state", "the callback carries no code")
        discovery_url, client_id, sealed = row.discovery_url, row.client_id, row.client_secret_sealed
    try:
        secret = await _open_secret(tenant_id, sealed)
    except Exception as exc:  # a key problem must not surface a sealed value or a stack
        raise SsoFailure("configuration", f"the client secret could not be opened ({type(exc).__name__})") from exc
    metadata = await provider_metadata(discovery_url, allowed=allowed)
    token = await _exchange_code(metadata, code=code, client_id=client_id, secret=secret, flow=flow, allowed=allowed)
    claims = await _id_token_claims(metadata, token, client_id=client_id, nonce=flow.nonce, allowed=allowed)
    if "email" not in claims:
        info = await _userinfo(metadata, str(token.get("access_token") or ""), allowed=allowed)
        if info.get("sub") == claims.get("sub"):
            claims = {**info, **claims}
    raw_email = claims.get("email")
    if not isinstance(raw_email, str) or not raw_email:
        raise SsoFailure("no_email", "the provider sent no e-mail address")
    try:
        email = normalize_email(raw_email)
    except BadRequest as exc:
        raise SsoFailure("no_email", "the provider's e-mail address is invalid") from exc
    if not _verified(claims.get("email_verified")):
        raise SsoFailure("email_unverified", f"the provider has not verified {email}")
    async with db.system_scope() as session:
        tenant, row = await _tenant_and_config(session, tenant_slug)
        domain = email.rsplit("@", 1)[-1]
        allowed_domains = [d.lower() for d in (row.allowed_domains or [])]
        if allowed_domains and domain not in allowed_domains:
            raise SsoFailure("domain", f"e-mail domain {domain!r} is not allowed")
        mapped = map_role(claims, role_claim=row.role_claim, mapping=dict(row.role_mapping or {}))
        name = claims.get("name") if isinstance(claims.get("name"), str) else ""
        user, created = await _user_for(
            session,
            row=row,
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=email,
            name=str(name or ""),
            mapped=mapped,
        )
        tenants = await memberships_of(session, user.id)
        # This tenant first, so the session lands in it.
        tenants.sort(key=lambda t: t.id != tenant_id)
        pair = await start_session(session, signer, config, user, tenants)
        await session.commit()
        role = next((t.role for t in tenants if t.id == tenant_id), None)
    await audit.record_now(
        db,
        tenant_id=tenant_id,
        action="auth.sso_login",
        context=replace(context, actor_type="user", actor_id=user.id),
        resource_type="user",
        resource_id=user.id,
        details={"email": email, "role": role, "user_created": created, "subject": str(claims["sub"])},
    )
    return Completed(pair=pair, tenant_id=tenant_id, next_path=flow.next_path, user_created=created)


async def audit_failure(db: Database, *, tenant_slug: str, failure: SsoFailure, context: AuditContext) -> None:
    """Record a refused SSO sign-in in the tenant's audit log (nothing when the tenant is unknown)."""
    tenant_id = await tenant_id_of(db, tenant_slug)
    if tenant_id is None:
        return
    await audit.record_now(
        db,
        tenant_id=tenant_id,
        action="auth.sso_login_failed",
        context=context,
        resource_type="sso",
        outcome="denied",
        details={"reason": failure.reason, "detail": failure.detail[:500]},
    )


__all__ = [
    "Completed",
    "SsoFailure",
    "SsoSettings",
    "Started",
    "TenantRole",
    "begin",
    "complete",
    "delete_settings",
    "get_settings",
    "map_role",
    "put_settings",
]
