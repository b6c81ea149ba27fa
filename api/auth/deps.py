"""FastAPI dependencies: credential -> principal -> tenant -> permission.

Every route declares exactly one access rule: ``Requires(Permission.X)`` or ``Public()``.
Both are :class:`AccessRule` objects, so tests (and tooling) can read a route's rule from its
dependency tree with :func:`access_rules_of`. Routes never check roles themselves.

Typed aliases for route signatures: :data:`CurrentPrincipal`, :data:`TenantSession`,
:data:`DatabaseDep`, :data:`AuditCtx`, :data:`StateDep`.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.auth.tokens import looks_like_jwt
from api.db.engine import Database
from api.errors import Forbidden, RateLimited, Unauthorized
from api.models.identity import User
from api.observability import request_id_var
from api.services import api_keys as api_key_service
from api.services import audit
from api.services import auth as auth_service
from api.services.audit import AuditContext
from api.services.identity import get_tenant_by_ref
from api.state import AppState

SESSION_COOKIE = "gorax_session"
CSRF_COOKIE = "gorax_csrf"
CSRF_HEADER = "X-CSRF-Token"
TENANT_HEADER = "X-Tenant-ID"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_state(request: Request) -> AppState:
    """The app's :class:`AppState`."""
    return request.app.state.gorax


def get_database(request: Request) -> Database:
    """The Gorax database of this app."""
    return get_state(request).db


StateDep = Annotated[AppState, Depends(get_state)]
DatabaseDep = Annotated[Database, Depends(get_database)]


def client_ip(request: Request) -> str | None:
    """The peer address (proxies' X-Forwarded-For is not trusted)."""
    return request.client.host if request.client else None


def audit_context(request: Request) -> AuditContext:
    """Who and where, for audit events of this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return AuditContext(
        actor_type=principal.kind if principal else "anonymous",
        actor_id=principal.id if principal else None,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_var.get(),
    )


AuditCtx = Annotated[AuditContext, Depends(audit_context)]


async def _user_principal(
    state: AppState, request: Request, user_id: str, family_id: str, via_cookie: bool
) -> Principal:
    async with state.db.system_scope() as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            raise Unauthorized("user no longer active")
        if await auth_service.family_revoked(session, family_id):
            raise Unauthorized("session revoked; sign in again")
        tenants = await auth_service.memberships_of(session, user.id)
    wanted = request.headers.get(TENANT_HEADER)
    chosen = None
    if wanted:
        chosen = next((t for t in tenants if wanted in (t.id, t.slug)), None)
        if chosen is None:
            raise Forbidden(f"not a member of tenant {wanted!r}", details={"header": TENANT_HEADER})
    elif tenants:
        chosen = tenants[0]
    return Principal(
        kind="user",
        id=user.id,
        email=user.email,
        name=user.name,
        tenant_id=chosen.id if chosen else None,
        role=Role(chosen.role) if chosen else None,
        memberships=tuple((t.id, t.role) for t in tenants),
        via_cookie=via_cookie,
        session_id=family_id,
    )


async def _api_key_principal(state: AppState, request: Request, token: str) -> Principal:
    async with state.db.system_scope() as session:
        key = await api_key_service.authenticate_api_key(session, token)
        key_id, tenant_id, role = key.id, key.tenant_id, key.role
        wanted = request.headers.get(TENANT_HEADER)
        if wanted and wanted != tenant_id:
            tenant = await get_tenant_by_ref(session, wanted)
            if tenant is None or tenant.id != tenant_id:
                raise Forbidden("API key belongs to another tenant", details={"header": TENANT_HEADER})
    return Principal(kind="api_key", id=key_id, tenant_id=tenant_id, role=Role(role))


async def _authenticate(state: AppState, request: Request) -> Principal:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be 'Bearer <token>'", details={"header": "Authorization"})
        if state.worker_token and hmac.compare_digest(token.encode(), state.worker_token.encode()):
            return Principal(kind="worker", id="worker", role=None, tenant_id=request.headers.get(TENANT_HEADER))
        if token.startswith(api_key_service.KEY_PREFIX):
            return await _api_key_principal(state, request, token)
        if looks_like_jwt(token):
            claims = state.signer.verify(token, "access")
            return await _user_principal(state, request, claims.user_id, claims.family_id, False)
        raise Unauthorized("unrecognised bearer token", details={"header": "Authorization"})
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        claims = state.signer.verify(cookie, "session")
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not claims.csrf or not hmac.compare_digest(sent.encode(), claims.csrf.encode()):
                raise Forbidden("CSRF token missing or wrong", details={"header": CSRF_HEADER})
        return await _user_principal(state, request, claims.user_id, claims.family_id, True)
    raise Unauthorized("authentication required")


async def _rate_limit(state: AppState, request: Request, subject: str) -> None:
    # The path from the scope: request.url builds the whole URL (host header, unsplit) first,
    # a twentieth of a webhook delivery's CPU.
    decision = await state.limiter.hit(subject, request.scope["path"])
    if decision is None:
        return
    request.state.rate_limit = decision
    if not decision.allowed:
        # The X-RateLimit-* and Retry-After headers come from the middleware (request.state).
        # Like a quota's 429: which limit was hit, its number and when it resets.
        resets_at = datetime.fromtimestamp(decision.reset, UTC).isoformat()
        who = "client address" if subject.startswith("ip:") else "tenant"
        raise RateLimited(
            f"rate limit exceeded: more than {decision.limit:,} requests in {decision.window} s from this {who} "
            f"({decision.name}); it resets at {resets_at}",
            details={
                "limit": decision.name,
                "max": decision.limit,
                "window_seconds": decision.window,
                "reset": decision.reset,
                "resets_at": resets_at,
            },
        )


# Declared only so OpenAPI (and /docs' "Authorize") shows how to authenticate; the header and
# cookie are parsed by _authenticate, which also handles API keys and the worker token.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Access token, API key (gx_<prefix>_<secret>) or worker token.",
)
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="Browser session; writes also need the X-CSRF-Token header.",
)


async def current_principal(
    request: Request,
    _bearer: object = Depends(_bearer_scheme),
    _cookie: object = Depends(_cookie_scheme),
) -> Principal:
    """The authenticated principal of this request (401 without a valid credential)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    state = get_state(request)
    principal = await _authenticate(state, request)
    request.state.principal = principal
    subject = f"tenant:{principal.tenant_id}" if principal.tenant_id else principal.actor
    await _rate_limit(state, request, subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class AccessRule:
    """Base of the per-route access declarations; ``permission`` None means public."""

    permission: Permission | None = None


class PermissionCheck(AccessRule):
    """Dependency that requires the principal to hold one permission in its tenant."""

    permission: Permission

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __repr__(self) -> str:
        return f"Requires({self.permission.value})"

    async def __call__(self, request: Request, principal: Principal = Depends(current_principal)) -> Principal:
        if principal.kind != "worker" and principal.tenant_id is None and self.permission is not Permission.ACCOUNT:
            raise Forbidden("no tenant: the user belongs to no tenant")
        if not principal.can(self.permission):
            if principal.tenant_id:
                await audit.record_now(
                    get_state(request).db,
                    tenant_id=principal.tenant_id,
                    action="authz.denied",
                    context=audit_context(request),
                    outcome="denied",
                    details={"permission": self.permission.value, "method": request.method, "path": request.url.path},
                )
            raise Forbidden(
                f"{self.permission.value} is required",
                details={"permission": self.permission.value, "role": principal.role.value if principal.role else None},
            )
        return principal


class PermissionProbe:
    """Dependency answering whether the principal holds a permission, without refusing.

    For a route that carries several operations of a protocol (``/mcp``: listing tools needs
    the route's own ``Requires``, calling one needs ``execution:run``): the route still declares
    its access rule, and its handlers read this answer instead of looking at roles.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __repr__(self) -> str:
        return f"Allows({self.permission.value})"

    async def __call__(self, principal: Principal = Depends(current_principal)) -> bool:
        return principal.can(self.permission)


def Allows(permission: Permission) -> Any:  # noqa: N802 - reads as a declaration
    """Whether the principal holds ``permission`` (True/False; never refuses the request)."""
    return Depends(PermissionProbe(permission))


class PublicAccess(AccessRule):
    """Dependency for routes open without credentials (rate limited by client address)."""

    def __init__(self, limit_by_address: bool = True) -> None:
        self.limit_by_address = limit_by_address

    def __repr__(self) -> str:
        return "Public()"

    async def __call__(self, request: Request) -> None:
        if self.limit_by_address:
            await _rate_limit(get_state(request), request, f"ip:{client_ip(request)}")


async def enforce_tenant_rate_limit(request: Request, *, tenant_id: str) -> None:
    """Count a public request against a tenant's limit once the route knows the tenant.

    For routes declared ``Public(limit_by_address=False)`` whose tenant comes from the path
    (e.g. ``POST /webhook/{token}``); raises :class:`RateLimited` (429) past the limit.
    """
    await _rate_limit(get_state(request), request, f"tenant:{tenant_id}")


def Requires(permission: Permission) -> Any:  # noqa: N802 - reads as a declaration
    """Declare that a route needs ``permission``; resolves to the :class:`Principal`."""
    return Depends(PermissionCheck(permission))


def Public(limit_by_address: bool = True) -> Any:  # noqa: N802 - reads as a declaration
    """Declare that a route needs no credentials (rate limited per client address unless
    ``limit_by_address`` is False; then call :func:`enforce_tenant_rate_limit`)."""
    return Depends(PublicAccess(limit_by_address))


def access_rules_of(dependant: Dependant) -> list[AccessRule]:
    """Every :class:`AccessRule` in a route's dependency tree."""
    found: list[AccessRule] = []
    stack = [dependant]
    while stack:
        node = stack.pop()
        if isinstance(node.call, AccessRule):
            found.append(node.call)
        stack.extend(node.dependencies)
    return found


async def tenant_session(
    principal: Principal = Depends(current_principal), db: Database = Depends(get_database)
) -> AsyncIterator[AsyncSession]:
    """A database session scoped to the principal's tenant (RLS on PostgreSQL)."""
    if principal.tenant_id is None:
        raise Forbidden("no tenant selected", details={"header": TENANT_HEADER})
    async with db.tenant_scope(tenant_id=principal.tenant_id) as session:
        yield session


TenantSession = Annotated[AsyncSession, Depends(tenant_session)]

__all__ = [
    "AccessRule",
    "Allows",
    "AuditCtx",
    "CurrentPrincipal",
    "DatabaseDep",
    "Public",
    "Requires",
    "StateDep",
    "TenantSession",
    "access_rules_of",
    "audit_context",
    "current_principal",
    "enforce_tenant_rate_limit",
]
