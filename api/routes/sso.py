"""Single sign-on: the tenant's OIDC configuration (admins) and the sign-in redirects (public).

``GET /auth/sso/{tenant}/start`` sends the browser to the provider; ``GET .../callback`` comes
back, signs in with the same session cookies as a password sign-in, and lands in the web app.
A refused sign-in lands on the sign-in page with ``?sso_error=<reason>`` (no token in any URL)
and is audited. ``GET /auth/sso/discover`` finds the tenant whose SSO serves an e-mail domain.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth.deps import AuditCtx, Public, Requires, StateDep, TenantSession
from api.auth.permissions import Permission, Role
from api.auth.principal import Principal
from api.errors import BadRequest, NotFound
from api.models.identity import Tenant
from api.routes.auth import set_session_cookies
from api.services import sso
from api.services.identity import normalize_email

router = APIRouter(tags=["sso"])
log = logging.getLogger(__name__)

#: The cookie that binds a sign-in to the browser that started it (ten minutes, SSO paths only).
BROWSER_COOKIE = "gorax_sso"
_COOKIE_PATH = "/api/v1/auth/sso/"
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class SsoConfigIn(BaseModel):
    """A tenant's SSO configuration (PUT replaces it; the secret is kept when omitted)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    discovery_url: str = Field(
        max_length=2000, description="The provider's /.well-known/openid-configuration URL (http or https)."
    )
    client_id: str = Field(min_length=1, max_length=400)
    client_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Write-only: never returned. Required the first time; omitted keeps the stored one.",
    )
    scopes: str = Field(default="openid email profile", max_length=400)
    allowed_domains: list[str] = Field(
        default_factory=list, max_length=100, description="E-mail domains allowed to sign in (empty: any)."
    )
    role_claim: str = Field(default="groups", min_length=1, max_length=200, description="Claim holding groups/roles.")
    role_mapping: dict[str, Role] = Field(
        default_factory=dict, description="Claim value -> role; the highest matching role wins."
    )
    default_role: Role | None = Field(
        default=Role.VIEWER, description="Role when no mapping matches; null refuses such sign-ins."
    )
    jit_enabled: bool = Field(default=True, description="Create users and memberships on first sign-in.")
    sso_only: bool = Field(default=False, description="Refuse password sign-in to members of this tenant.")

    @field_validator("discovery_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        parts = value.split()
        if "openid" not in parts:
            raise ValueError("must include 'openid'")
        return " ".join(parts)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        cleaned = []
        for index, domain in enumerate(value):
            domain = domain.strip().lower().lstrip("@")
            if not _DOMAIN.match(domain):
                raise ValueError(f"allowed_domains[{index}] {domain!r} is not a domain name")
            cleaned.append(domain)
        return sorted(set(cleaned))


class SsoConfigPublic(BaseModel):
    """A tenant's SSO configuration as returned: the secret only as ``client_secret_set``."""

    enabled: bool
    discovery_url: str
    client_id: str
    client_secret_set: bool
    scopes: str
    allowed_domains: list[str]
    role_claim: str
    role_mapping: dict[str, Role]
    default_role: Role | None
    jit_enabled: bool
    sso_only: bool
    updated_at: datetime
    start_url: str = Field(description="Where a member starts an SSO sign-in.")
    callback_url: str = Field(description="The redirect URI to register at the provider.")


class SsoDiscovery(BaseModel):
    tenant: str
    start_url: str


def _base_url(state: StateDep, request: Request) -> str:
    return (state.settings.api_url or str(request.base_url)).rstrip("/")


def _callback_url(state: StateDep, request: Request, slug: str) -> str:
    return f"{_base_url(state, request)}/api/v1/auth/sso/{slug}/callback"


def _start_path(slug: str) -> str:
    return f"/api/v1/auth/sso/{slug}/start"


def _public(view: sso.SsoSettings, state: StateDep, request: Request, slug: str) -> SsoConfigPublic:
    return SsoConfigPublic(
        **{k: v for k, v in view.__dict__.items()},
        start_url=_start_path(slug),
        callback_url=_callback_url(state, request, slug),
    )


async def _slug(session: Any, tenant_id: str) -> str:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant.slug


@router.get("/tenants/current/sso", response_model=SsoConfigPublic)
async def get_sso(
    request: Request,
    state: StateDep,
    session: TenantSession,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> SsoConfigPublic:
    """The tenant's SSO configuration (404 when none); the client secret is never returned."""
    tenant_id = principal.required_tenant_id()
    view = await sso.get_settings(session, tenant_id=tenant_id)
    return _public(view, state, request, await _slug(session, tenant_id))


@router.put("/tenants/current/sso", response_model=SsoConfigPublic)
async def put_sso(
    body: SsoConfigIn,
    request: Request,
    state: StateDep,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.SETTINGS_MANAGE),
) -> SsoConfigPublic:
    """Create or replace the tenant's SSO configuration (audited, without the secret)."""
    tenant_id = principal.required_tenant_id()
    values = body.model_dump(exclude={"client_secret"})
    values["role_mapping"] = {k: Role(v).value for k, v in body.role_mapping.items()}
    values["default_role"] = body.default_role.value if body.default_role else None
    view = await sso.put_settings(
        session, tenant_id=tenant_id, values=values, client_secret=body.client_secret, context=context
    )
    return _public(view, state, request, await _slug(session, tenant_id))


@router.delete("/tenants/current/sso", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sso(
    session: TenantSession, context: AuditCtx, principal: Principal = Requires(Permission.SETTINGS_MANAGE)
) -> Response:
    """Remove the tenant's SSO configuration (password sign-in works again)."""
    await sso.delete_settings(session, tenant_id=principal.required_tenant_id(), context=context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/sso/discover", response_model=SsoDiscovery, dependencies=[Public()])
async def discover(
    state: StateDep,
    email: str | None = Query(default=None, max_length=320, description="An e-mail address (its domain is used)."),
    domain: str | None = Query(default=None, max_length=253),
) -> SsoDiscovery:
    """The tenant whose SSO serves this e-mail domain (404 when none, or more than one)."""
    if email:
        try:
            domain = normalize_email(email).rsplit("@", 1)[-1]
        except BadRequest:
            domain = None
    if not domain:
        raise NotFound("no SSO for this address", details={"query": "email"})
    slug = await sso.tenant_for_domain(state.db, domain)
    if slug is None:
        raise NotFound(f"no SSO serves the domain {domain!r}", details={"query": "email" if email else "domain"})
    return SsoDiscovery(tenant=slug, start_url=_start_path(slug))


def _refused(reason: str) -> RedirectResponse:
    response = RedirectResponse(f"/?sso_error={quote(reason)}", status_code=status.HTTP_303_SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    return response


_TO_SIGN_IN: dict[int | str, dict[str, Any]] = {
    303: {"description": "Refused: to the sign-in page with ?sso_error=<reason>"}
}


@router.get(
    "/auth/sso/{tenant_slug}/start",
    dependencies=[Public()],
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={302: {"description": "To the provider's authorization endpoint"}, **_TO_SIGN_IN},
)
async def sso_start(
    request: Request,
    state: StateDep,
    context: AuditCtx,
    tenant_slug: str = Path(max_length=63, pattern=_SLUG),
    next: str | None = Query(default=None, max_length=2000, description="A path of the web app to land on."),
) -> RedirectResponse:
    """Send the browser to the tenant's provider (authorization code flow, PKCE, state, nonce)."""
    try:
        started = await sso.begin(
            state.db,
            tenant_slug=tenant_slug,
            redirect_uri=_callback_url(state, request, tenant_slug),
            next_path=next,
            allowed=state.settings.runtime.allowed_networks,
        )
    except sso.SsoFailure as failure:
        log.warning("SSO sign-in for tenant %s not started: %s", tenant_slug, failure.reason)
        await sso.audit_failure(state.db, tenant_slug=tenant_slug, failure=failure, context=context)
        return _refused(failure.reason)
    response = RedirectResponse(started.authorize_url, status_code=status.HTTP_302_FOUND)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        BROWSER_COOKIE,
        started.browser_secret,
        max_age=sso.STATE_TTL_SECONDS,
        httponly=True,
        samesite="lax",
        secure=state.config.cookie_secure,
        path=_COOKIE_PATH,
    )
    return response


@router.get(
    "/auth/sso/{tenant_slug}/callback",
    dependencies=[Public()],
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={303: {"description": "Signed in: to the web app; refused: to the sign-in page with ?sso_error"}},
)
async def sso_callback(
    request: Request,
    state: StateDep,
    context: AuditCtx,
    tenant_slug: str = Path(max_length=63, pattern=_SLUG),
    code: str | None = Query(default=None, max_length=2000),
    state_param: str | None = Query(default=None, alias="state", max_length=500),
    error: str | None = Query(default=None, max_length=200),
) -> RedirectResponse:
    """The provider's redirect back: check everything, sign in, land in the web app."""
    try:
        done = await sso.complete(
            state.db,
            state.signer,
            state.config,
            tenant_slug=tenant_slug,
            code=code,
            state=state_param,
            error=error,
            browser_secret=request.cookies.get(BROWSER_COOKIE),
            allowed=state.settings.runtime.allowed_networks,
            context=context,
        )
    except sso.SsoFailure as failure:
        log.warning("SSO sign-in for tenant %s refused: %s", tenant_slug, failure.reason)
        await sso.audit_failure(state.db, tenant_slug=tenant_slug, failure=failure, context=context)
        response = _refused(failure.reason)
        response.delete_cookie(BROWSER_COOKIE, path=_COOKIE_PATH)
        return response
    # The tenant travels in the fragment: the web app selects it, and no server or log sees it.
    response = RedirectResponse(f"{done.next_path}#sso_tenant={done.tenant_id}", status_code=status.HTTP_303_SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(BROWSER_COOKIE, path=_COOKIE_PATH)
    set_session_cookies(response, state, done.pair)
    return response
