"""OAuth 2.0 connections, the API's side: the connect flow, client-credentials tests, and what
a run reports (a revoked grant, a failed refresh): audited, and e-mailed to the tenant's admins.

A connect flow keeps its PKCE verifier server-side in ``oauth_authorizations`` (by the hash of
its ``state``, bound to the tenant, the person who started it and a browser cookie, for
``GORAX_OAUTH_STATE_TTL_SECONDS``); the callback uses it once. The ``state`` starts with the
tenant id so the callback reads the row inside that tenant's scope. Tokens go straight into the
credential, sealed; no token is in a URL, a response, a log line or an audit entry.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Role
from api.db.base import utcnow
from api.db.engine import Database
from api.models.identity import Membership, User
from api.models.oauth import OAuthAuthorization
from api.services import audit, notifications
from api.services.audit import AuditContext
from blocks.errors import CredentialInputError
from blocks.loader import load_credential
from blocks.redact import mask
from blocks.service import CredentialInfo, update_credential
from blocks.types import OAuth2Connection
from flows import oauth
from flows.errors import IntegrationError

log = logging.getLogger("gorax.oauth")

#: The cookie that ties a connect flow to the browser that started it.
BROWSER_COOKIE = "gorax_oauth"
CALLBACK_PATH = "/api/v1/oauth/callback"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def load_connection(name: str, *, tenant_id: str, tenant_slug: str | None) -> OAuth2Connection:
    """The tenant's OAuth connection ``name``, unsealed; CredentialInputError for another type."""
    block = await load_credential(name, tenant_id=tenant_id, tenant_slug=tenant_slug)
    if not isinstance(block, OAuth2Connection):
        kind = getattr(block, "block_type_slug", type(block).__name__)
        raise CredentialInputError(
            f"credential {name!r} is a {kind}, not an OAuth 2.0 connection",
            details=[{"field": "type", "message": "not an OAuth 2.0 connection"}],
        )
    return block


@dataclass(frozen=True)
class StartedFlow:
    authorization_url: str
    expires_at: datetime
    browser_nonce: str


async def start_connect(
    session: AsyncSession,
    connection: OAuth2Connection,
    *,
    tenant_id: str,
    name: str,
    context: AuditContext,
    redirect_uri: str,
    ttl_seconds: int,
) -> StartedFlow:
    """Keep a new connect flow's state and verifier; the provider's authorization URL."""
    if connection.grant != "authorization_code":
        raise CredentialInputError(
            f"credential {name!r} uses the client-credentials grant: it has no Connect step (use Test connection)",
            details=[{"field": "values.grant", "message": "not authorization_code"}],
        )
    state = f"{tenant_id}.{secrets.token_urlsafe(32)}"
    verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(32)
    try:
        url = await oauth.authorization_url(connection, redirect_uri=redirect_uri, state=state, code_verifier=verifier)
    except IntegrationError as exc:
        raise CredentialInputError(
            f"credential {name!r}: {exc.reason}", details=[{"field": "values.authorize_url", "message": exc.reason}]
        ) from None
    now = utcnow()
    # Flows nobody finished are of no use to anyone: drop the tenant's expired ones.
    await session.execute(
        delete(OAuthAuthorization).where(OAuthAuthorization.tenant_id == tenant_id, OAuthAuthorization.expires_at < now)
    )
    row = OAuthAuthorization(
        state_hash=_hash(state),
        tenant_id=tenant_id,
        browser_hash=_hash(nonce),
        credential=name,
        actor_type=context.actor_type,
        actor_id=context.actor_id or "",
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="credential.oauth.connect_start",
        context=context,
        resource_type="credential",
        resource_id=name,
        details={"name": name, "provider": connection.provider, "scopes": connection.scopes},
    )
    return StartedFlow(url, row.expires_at, nonce)


@dataclass(frozen=True)
class CallbackOutcome:
    """Where the browser goes back to: the credential and ``connected`` or an error code."""

    credential: str | None
    status: str
    reason: str | None = None


def tenant_of_state(state: str) -> str | None:
    """The tenant a ``state`` was issued for (its prefix), if it looks like one of ours."""
    tenant_id, dot, rest = state.partition(".")
    if not dot or not rest:
        return None
    try:
        return str(uuid.UUID(tenant_id)) if len(tenant_id) == 36 else None
    except ValueError:
        return None


async def finish_connect(
    db: Database,
    *,
    state: str,
    code: str | None,
    provider_error: str | None,
    browser_nonce: str | None,
    tenant_slug_of: Any,
    request_context: AuditContext,
) -> CallbackOutcome:
    """The callback: check and use up the flow, exchange the code, seal the tokens, audit."""
    tenant_id = tenant_of_state(state)
    if tenant_id is None:
        return CallbackOutcome(None, "error", "unknown_state")
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        row = (
            await session.execute(
                select(OAuthAuthorization).where(
                    OAuthAuthorization.tenant_id == tenant_id, OAuthAuthorization.state_hash == _hash(state)
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return CallbackOutcome(None, "error", "unknown_state")
        await session.delete(row)  # used once, whatever happens next
        await session.commit()
    context = AuditContext(
        actor_type=row.actor_type,
        actor_id=row.actor_id or None,
        ip=request_context.ip,
        user_agent=request_context.user_agent,
        request_id=request_context.request_id,
    )
    name = row.credential
    problem: str | None = None
    detail: str | None = None
    if row.expires_at < utcnow():
        problem, detail = "expired", "the connect flow expired before the provider called back"
    elif browser_nonce is None or _hash(browser_nonce) != row.browser_hash:
        problem, detail = "browser_mismatch", "the callback came to a browser that did not start the flow"
    elif provider_error or not code:
        problem, detail = "denied", f"the provider answered {provider_error or 'without a code'}"
    values: dict[str, Any] | None = None
    provider = None
    if problem is None:
        try:
            tenant_slug = await tenant_slug_of(tenant_id)
            connection = await load_connection(name, tenant_id=tenant_id, tenant_slug=tenant_slug)
            provider = connection.provider
            values = await oauth.exchange_code(
                connection, code=code or "", redirect_uri=row.redirect_uri, code_verifier=row.code_verifier
            )
            await update_credential(name, values, tenant_id=tenant_id, tenant_slug=tenant_slug)
        except IntegrationError as exc:
            problem, detail = "exchange_failed", exc.reason
        except Exception as exc:  # the credential went away, or its keys cannot be read
            problem, detail = "exchange_failed", mask(f"{type(exc).__name__}: {exc}")[:300]
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="credential.oauth.connect",
            context=context,
            resource_type="credential",
            resource_id=name,
            details={"name": name, "provider": provider, **({"error": problem, "reason": detail} if problem else {})},
            outcome="failure" if problem else "success",
        )
        await session.commit()
    if problem is not None:
        log.warning("OAuth connect of credential %r in tenant %s failed: %s", name, tenant_id, detail)
        return CallbackOutcome(name, "error", problem)
    return CallbackOutcome(name, "connected")


async def test_client_credentials(
    session: AsyncSession,
    connection: OAuth2Connection,
    *,
    tenant_id: str,
    tenant_slug: str,
    name: str,
    context: AuditContext,
) -> CredentialInfo:
    """Fetch a client-credentials token now, store it sealed, audit; the credential's state."""
    if connection.grant != "client_credentials":
        raise CredentialInputError(
            f"credential {name!r} uses the authorization-code grant: connect it instead",
            details=[{"field": "values.grant", "message": "not client_credentials"}],
        )
    try:
        values = await oauth.fetch_client_token(connection)
    except IntegrationError as exc:
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="credential.oauth.connect",
            context=context,
            resource_type="credential",
            resource_id=name,
            details={"name": name, "provider": connection.provider, "grant": connection.grant, "reason": exc.reason},
            outcome="failure",
        )
        await session.commit()
        raise CredentialInputError(
            f"credential {name!r}: the token request failed: {exc.reason}",
            details=[{"field": "values.client_secret", "message": exc.reason}],
        ) from None
    info = await update_credential(name, values, tenant_id=tenant_id, tenant_slug=tenant_slug)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="credential.oauth.connect",
        context=context,
        resource_type="credential",
        resource_id=name,
        details={"name": name, "provider": connection.provider, "grant": connection.grant},
    )
    return info


async def admin_emails(session: AsyncSession, *, tenant_id: str) -> list[str]:
    """The e-mail addresses of the tenant's admins."""
    rows = await session.execute(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id, Membership.role == Role.ADMIN.value)
        .order_by(User.email)
    )
    return [row[0] for row in rows]


async def record_run_event(
    db: Database,
    *,
    tenant_id: str,
    tenant_slug: str | None,
    credential: str,
    event: str,
    reason: str,
    flow_run_id: str | None,
    actor: AuditContext,
) -> dict[str, Any]:
    """A run's report about a connection: audited; a revoked grant is e-mailed to the admins."""
    notified: list[str] = []
    notify_error: str | None = None
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        admins = await admin_emails(session, tenant_id=tenant_id)
    if event == "revoked":
        try:
            connection = await load_connection(credential, tenant_id=tenant_id, tenant_slug=tenant_slug)
            if connection.alert_email_credential:
                server = await notifications.load_mail_server(
                    tenant_id=tenant_id, credential=connection.alert_email_credential
                )
                await notifications.send_email(
                    server,
                    to=admins,
                    subject=f"[Gorax] Credential {credential} needs to be reconnected",
                    text=(
                        f"The OAuth connection {credential!r} can no longer refresh its access token: "
                        f"{reason}.\n\nRuns that use it fail until an admin presses Reconnect on the "
                        "Credentials screen."
                    ),
                )
                notified = admins
            else:
                notify_error = "the connection names no alert_email_credential: recorded in the audit log only"
        except Exception as exc:
            notify_error = mask(f"{type(exc).__name__}: {exc}")[:300]
            log.warning(
                "could not e-mail the admins of tenant %s about credential %r: %s", tenant_id, credential, notify_error
            )
    details: dict[str, Any] = {"name": credential, "reason": reason, "execution_id": flow_run_id, "admins": admins}
    if event == "revoked":
        details["emailed"] = notified
        if notify_error:
            details["email_error"] = notify_error
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        await audit.record(
            session,
            tenant_id=tenant_id,
            action=f"credential.oauth.{event}",
            context=actor,
            resource_type="credential",
            resource_id=credential,
            details=details,
            outcome="failure",
        )
        await session.commit()
    return {"recorded": True, "emailed": notified}
