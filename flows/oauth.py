"""OAuth 2.0 connections: the token requests (authlib's async client) and keeping tokens fresh.

The API and the worker both use this module:

- the API builds the authorization URL (PKCE, S256), exchanges the callback's code and fetches
  client-credentials tokens (:func:`authorization_url`, :func:`exchange_code`,
  :func:`fetch_client_token`);
- a run keeps a connection's access token fresh (:func:`ensure_fresh`, before a node gets the
  credential) and refreshes it once when the provider answers 401 (:func:`refresh_rejected`).

A refresh runs under a per-credential lock, a Prefect global concurrency limit of one slot
(``gorax-oauth-<tenant>-<credential>``, created on demand), so concurrent runs on any number of
workers make one token request: a run that waited for the lock reloads the credential and uses
the tokens the holder stored. New tokens are written back sealed, through the credential
service. A refresh token the provider refuses (``invalid_grant``) marks the connection
``needs_reconnection`` with the reason, fails the run with "credential X needs to be
reconnected: ...", and reports the revocation to the API (audit log, e-mail to the tenant's
admins) through the internal endpoint.

Every token endpoint is checked by the outbound guard first (:func:`check_endpoint`): loopback
and link-local providers need ``GORAX_HTTP_ALLOWED_NETWORKS``. No token or secret is logged,
put in a URL or returned in an error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import SecretStr

from blocks import keys
from blocks.loader import load_credential
from blocks.redact import mask, register_secret
from blocks.service import update_credential
from blocks.types import OAuth2Connection
from flows.errors import CredentialsUnavailable, IntegrationError
from flows.integrations.guard import check_endpoint
from flows.internal_api import post_internal
from flows.settings import get_settings

log = logging.getLogger("gorax.oauth")

INTEGRATION = "oauth"
LOCK_PREFIX = "gorax-oauth-"
#: Token-endpoint errors that mean the grant is gone: the connection needs a person again.
REVOKED_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "invalid_client"})


class NeedsReconnection(CredentialsUnavailable):
    """The connection's grant is gone (revoked, expired): someone has to connect it again."""

    def __init__(self, name: str, reason: str, *, node_id: str | None = None) -> None:
        super().__init__(f"credential {name!r} needs to be reconnected: {reason}", node_id=node_id)
        self.credential = name
        self.reason = reason


def is_connection(block: Any) -> bool:
    """Whether ``block`` is an OAuth 2.0 connection."""
    return isinstance(block, OAuth2Connection)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _client(connection: OAuth2Connection, *, redirect_uri: str | None = None) -> AsyncOAuth2Client:
    """authlib's client for ``connection`` (PKCE S256, the preset's client authentication)."""
    secret = _secret(connection.client_secret)
    return AsyncOAuth2Client(
        client_id=connection.client_id,
        client_secret=secret,
        token_endpoint_auth_method=connection.preset.token_auth if secret else "none",
        scope=connection.scopes or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=30,
        follow_redirects=False,
        trust_env=False,
    )


async def _token_request(connection: OAuth2Connection, operation: str, **kwargs: Any) -> dict[str, Any]:
    """One token-endpoint request; an IntegrationError naming it (with the provider's error code)."""
    url = connection.token_url or ""
    await check_endpoint(url, INTEGRATION, operation)
    secrets = [s for s in (_secret(connection.client_secret), kwargs.get("refresh_token"), kwargs.get("code")) if s]
    try:
        async with _client(connection, redirect_uri=kwargs.pop("redirect_uri", None)) as client:
            if operation == "refresh":
                token = await client.refresh_token(url, refresh_token=kwargs["refresh_token"])
            else:
                token = await client.fetch_token(url, **kwargs)
    except OAuthError as exc:
        described = mask(f"{exc.error}: {exc.description}" if exc.description else str(exc.error))
        for secret in secrets:
            described = described.replace(secret, "***")
        raise IntegrationError(INTEGRATION, operation, described, provider_message=exc.error) from None
    except IntegrationError:
        raise
    except Exception as exc:  # network and protocol errors: say what, never the request
        raise IntegrationError(
            INTEGRATION, operation, f"token endpoint {url} failed: {type(exc).__name__}", retryable=True
        ) from None
    if not token.get("access_token"):
        raise IntegrationError(INTEGRATION, operation, f"token endpoint {url} answered without an access_token")
    return dict(token)


def token_values(token: dict[str, Any], *, keep_refresh_token: str | None = None) -> dict[str, Any]:
    """The credential values a token response sets: tokens, expiry, status connected."""
    expires_at: datetime | None = None
    if token.get("expires_at"):
        expires_at = datetime.fromtimestamp(float(token["expires_at"]), UTC)
    elif token.get("expires_in"):
        expires_at = datetime.now(UTC) + timedelta(seconds=float(token["expires_in"]))
    refresh = token.get("refresh_token") or keep_refresh_token
    for value in (token["access_token"], refresh):
        if value:
            register_secret(value)
    return {
        "access_token": token["access_token"],
        # A provider that rotates refresh tokens sends a new one; one that does not keeps the old.
        "refresh_token": refresh,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "status": "connected",
        "status_reason": None,
    }


# -- the connect flow (API) ---------------------------------------------------------------------
async def authorization_url(connection: OAuth2Connection, *, redirect_uri: str, state: str, code_verifier: str) -> str:
    """Where the browser goes to consent: the provider's authorization URL with PKCE."""
    url = connection.authorize_url or ""
    await check_endpoint(url, INTEGRATION, "authorize")
    async with _client(connection, redirect_uri=redirect_uri) as client:
        built, _ = client.create_authorization_url(
            url, state=state, code_verifier=code_verifier, **dict(connection.preset.authorize_params)
        )
    return str(built)


async def exchange_code(
    connection: OAuth2Connection, *, code: str, redirect_uri: str, code_verifier: str
) -> dict[str, Any]:
    """The credential values from the callback's authorization code (PKCE verifier sent)."""
    token = await _token_request(
        connection,
        "exchange code",
        grant_type="authorization_code",
        code=code,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
    )
    return token_values(token)


async def fetch_client_token(connection: OAuth2Connection) -> dict[str, Any]:
    """The credential values from a client-credentials token request."""
    return token_values(await _token_request(connection, "client credentials", grant_type="client_credentials"))


# -- keeping tokens fresh (worker) --------------------------------------------------------------
def lock_name(tenant_id: str, name: str) -> str:
    """The Prefect global concurrency limit that serialises refreshes of one credential."""
    return f"{LOCK_PREFIX}{tenant_id}-{name}"


async def _ensure_lock(name: str) -> None:
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1, active=True)
                )
            except ObjectAlreadyExists:
                pass  # another worker created it first


def _adopt(block: OAuth2Connection, stored: OAuth2Connection) -> None:
    """Take the stored connection's tokens and state into the run's copy (in place: the run's
    credential cache holds this object)."""
    for field in ("access_token", "refresh_token", "expires_at", "status", "status_reason"):
        setattr(block, field, getattr(stored, field))


async def _report(tenant_id: str, name: str, event: str, reason: str, flow_run_id: str | None) -> None:
    """Tell the API (audit log, admins' e-mail); a failure to tell it is logged, not raised."""
    try:
        await post_internal(
            "oauth/events",
            {"tenant_id": tenant_id, "credential": name, "event": event, "reason": reason, "flow_run_id": flow_run_id},
        )
    except Exception as exc:
        log.warning("could not report OAuth %s of credential %r to the API: %s", event, name, mask(str(exc)))


async def _refresh_stored(
    block: OAuth2Connection, *, tenant_id: str, name: str, rejected: str | None, flow_run_id: str | None
) -> None:
    """Under the lock: reload, refresh unless someone else has, store sealed, adopt."""
    margin = get_settings().runtime.oauth_refresh_margin_seconds
    stored = await load_credential(name, tenant_id=tenant_id)
    if not isinstance(stored, OAuth2Connection):
        raise CredentialsUnavailable(f"credential {name!r} is no longer an OAuth 2.0 connection")
    if stored.status == "needs_reconnection":
        _adopt(block, stored)
        raise NeedsReconnection(name, stored.status_reason or "the provider refused its refresh token")
    current = _secret(stored.access_token)
    if current is not None and (current != rejected if rejected is not None else not stored.expires_within(margin)):
        _adopt(block, stored)  # another run refreshed it while this one waited
        return
    tenant_slug = await keys.tenant_slug_of(tenant_id)
    if tenant_slug is None:
        raise CredentialsUnavailable(f"credential {name!r}: tenant {tenant_id} has no keyring")
    try:
        if stored.grant == "client_credentials":
            values = await fetch_client_token(stored)
        elif stored.refresh_token is None:
            raise IntegrationError(INTEGRATION, "refresh", "no refresh token", provider_message="invalid_grant")
        else:
            token = await _token_request(stored, "refresh", refresh_token=_secret(stored.refresh_token))
            values = token_values(token, keep_refresh_token=_secret(stored.refresh_token))
    except IntegrationError as exc:
        if exc.provider_message not in REVOKED_ERRORS:
            await _report(tenant_id, name, "refresh_failed", exc.reason, flow_run_id)
            raise
        reason = f"the provider refused the refresh ({exc.reason})"
        await update_credential(
            name,
            {"status": "needs_reconnection", "status_reason": reason, "access_token": None},
            tenant_id=tenant_id,
            tenant_slug=tenant_slug,
        )
        block.status, block.status_reason, block.access_token = "needs_reconnection", reason, None
        await _report(tenant_id, name, "revoked", reason, flow_run_id)
        raise NeedsReconnection(name, reason) from None
    await update_credential(name, values, tenant_id=tenant_id, tenant_slug=tenant_slug)
    _adopt(block, OAuth2Connection.model_validate({**stored.model_dump(), **values}))
    log.info("refreshed the access token of OAuth credential %r", name)


async def _refresh(
    block: OAuth2Connection, *, tenant_id: str, name: str, rejected: str | None, flow_run_id: str | None
) -> None:
    lock = lock_name(tenant_id, name)
    wait = get_settings().runtime.oauth_lock_wait_seconds
    await _ensure_lock(lock)
    try:
        async with concurrency(lock, occupy=1, timeout_seconds=wait, strict=True):
            await _refresh_stored(block, tenant_id=tenant_id, name=name, rejected=rejected, flow_run_id=flow_run_id)
    except AcquireConcurrencySlotTimeoutError:
        raise IntegrationError(
            INTEGRATION, "refresh", f"credential {name!r}: another refresh held {lock!r} for {wait:g}s", retryable=True
        ) from None


async def ensure_fresh(block: Any, *, tenant_id: str, name: str, flow_run_id: str | None = None) -> None:
    """Before a node uses ``block``: refresh its access token if it expires within the margin.

    A connection that needs reconnecting (or was never connected) fails with that message.
    Blocks of other types pass through untouched.
    """
    if not isinstance(block, OAuth2Connection):
        return
    if block.status == "needs_reconnection":
        raise NeedsReconnection(name, block.status_reason or "its grant was revoked")
    if block.status == "not_connected" and block.grant == "authorization_code":
        raise NeedsReconnection(name, "it was never connected (press Connect on the Credentials screen)")
    if block.expires_within(get_settings().runtime.oauth_refresh_margin_seconds):
        await _refresh(block, tenant_id=tenant_id, name=name, rejected=None, flow_run_id=flow_run_id)


async def refresh_rejected(block: Any, *, tenant_id: str | None, name: str, flow_run_id: str | None = None) -> bool:
    """The provider answered 401 to ``block``'s access token: refresh once (or take the token
    another run refreshed meanwhile). True when there is a new token to retry with."""
    if not isinstance(block, OAuth2Connection) or not tenant_id:
        return False
    await _refresh(block, tenant_id=tenant_id, name=name, rejected=_secret(block.access_token), flow_run_id=flow_run_id)
    return block.access_token is not None
