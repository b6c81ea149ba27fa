"""OAuth 2.0 connections: presets, Connect (authorization code + PKCE), the provider's callback,
Test connection (client credentials), and the worker's reports (revoked grant, failed refresh)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.auth.deps import AuditCtx, DatabaseDep, Public, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.routes.credentials import CredentialRef, _credential_errors, _slug
from api.services import oauth as service
from api.services.audit import AuditContext
from blocks import keys
from blocks import service as credential_service
from blocks.service import CredentialInfo
from blocks.types import OAUTH_PROVIDERS

router = APIRouter(tags=["credentials"])


class OAuthProviderInfo(BaseModel):
    """A provider preset: what a new connection of it gets when its fields are left empty."""

    slug: str
    label: str
    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None
    scopes: str


class ConnectStarted(BaseModel):
    """Where to send the browser; the flow must come back before ``expires_at``."""

    authorization_url: str
    expires_at: datetime


class OAuthRunEvent(BaseModel):
    """A run's report about a connection (internal)."""

    tenant_id: str = Field(max_length=36)
    credential: str = Field(max_length=100)
    event: Literal["revoked", "refresh_failed"]
    reason: str = Field(max_length=2000)
    flow_run_id: str | None = Field(default=None, max_length=36)


def _redirect_uri(state: Any, request: Request) -> str:
    """The callback URL registered at the provider: GORAX_API_URL's, else this request's origin."""
    base = state.settings.api_url or str(request.base_url)
    return base.rstrip("/") + service.CALLBACK_PATH


@router.get("/oauth/providers", response_model=list[OAuthProviderInfo])
async def oauth_providers(principal: Principal = Requires(Permission.CREDENTIAL_READ)) -> list[OAuthProviderInfo]:
    """The OAuth 2.0 provider presets (GitHub, Slack, Google, Microsoft, generic)."""
    return [
        OAuthProviderInfo(
            slug=slug,
            label=p.label,
            authorize_url=p.authorize_url,
            token_url=p.token_url,
            revoke_url=p.revoke_url,
            scopes=p.scopes,
        )
        for slug, p in OAUTH_PROVIDERS.items()
    ]


@router.post("/credentials/{ref}/oauth/connect", response_model=ConnectStarted)
async def connect(
    request: Request,
    response: Response,
    session: TenantSession,
    state: StateDep,
    context: AuditCtx,
    ref: str = CredentialRef,
    principal: Principal = Requires(Permission.CREDENTIAL_MANAGE),
) -> ConnectStarted:
    """Start connecting an OAuth credential: the provider's authorization URL to open.

    The PKCE verifier and state stay on the server; a cookie ties the flow to this browser.
    """
    tenant_id = principal.required_tenant_id()
    async with _credential_errors():
        tenant_slug = await _slug(session, tenant_id)
        name = (await credential_service.get_credential(ref, tenant_id=tenant_id, tenant_slug=tenant_slug)).name
        connection = await service.load_connection(name, tenant_id=tenant_id, tenant_slug=tenant_slug)
        ttl = state.settings.api.oauth_state_ttl_seconds
        started = await service.start_connect(
            session,
            connection,
            tenant_id=tenant_id,
            name=name,
            context=context,
            redirect_uri=_redirect_uri(state, request),
            ttl_seconds=ttl,
        )
    await session.commit()
    response.set_cookie(
        service.BROWSER_COOKIE,
        started.browser_nonce,
        max_age=ttl,
        httponly=True,
        samesite="lax",
        secure=state.settings.api.cookie_secure,
        path=service.CALLBACK_PATH,
    )
    return ConnectStarted(authorization_url=started.authorization_url, expires_at=started.expires_at)


@router.get("/oauth/callback", include_in_schema=True, response_class=RedirectResponse, status_code=303)
async def callback(
    request: Request,
    db: DatabaseDep,
    context: AuditCtx,
    state: str = Query(default="", max_length=200),
    code: str | None = Query(default=None, max_length=4096),
    error: str | None = Query(default=None, max_length=200),
    _: None = Public(),
) -> RedirectResponse:
    """The provider sends the browser back here: exchange the code, seal the tokens, and go on
    to the Credentials screen with ``oauth=connected`` or ``oauth=error&reason=...`` (never a token)."""
    outcome = await service.finish_connect(
        db,
        state=state,
        code=code,
        provider_error=error,
        browser_nonce=request.cookies.get(service.BROWSER_COOKIE),
        tenant_slug_of=keys.tenant_slug_of,
        request_context=context,
    )
    query = {"oauth": outcome.status}
    if outcome.credential:
        query["credential"] = outcome.credential
    if outcome.reason:
        query["reason"] = outcome.reason
    redirect = RedirectResponse(f"/credentials?{urlencode(query)}", status_code=303)
    redirect.delete_cookie(service.BROWSER_COOKIE, path=service.CALLBACK_PATH)
    return redirect


@router.post("/credentials/{ref}/oauth/test", response_model=CredentialInfo)
async def test_connection(
    session: TenantSession,
    context: AuditCtx,
    ref: str = CredentialRef,
    principal: Principal = Requires(Permission.CREDENTIAL_MANAGE),
) -> CredentialInfo:
    """Test a client-credentials connection: fetch a token now and store it (sealed)."""
    tenant_id = principal.required_tenant_id()
    tenant_slug = await _slug(session, tenant_id)
    async with _credential_errors():
        name = (await credential_service.get_credential(ref, tenant_id=tenant_id, tenant_slug=tenant_slug)).name
        connection = await service.load_connection(name, tenant_id=tenant_id, tenant_slug=tenant_slug)
        info = await service.test_client_credentials(
            session, connection, tenant_id=tenant_id, tenant_slug=tenant_slug, name=name, context=context
        )
    await session.commit()
    return info


@router.post("/internal/oauth/events")
async def run_event(
    body: OAuthRunEvent, db: DatabaseDep, principal: Principal = Requires(Permission.INTERNAL)
) -> dict[str, Any]:
    """A run reports a connection's revoked grant or failed refresh: audited, admins e-mailed."""
    return await service.record_run_event(
        db,
        tenant_id=body.tenant_id,
        tenant_slug=await keys.tenant_slug_of(body.tenant_id),
        credential=body.credential,
        event=body.event,
        reason=body.reason,
        flow_run_id=body.flow_run_id,
        actor=AuditContext(actor_type="worker", actor_id=principal.id),
    )
