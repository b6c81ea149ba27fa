"""What every integration call goes through: :func:`check_endpoint`, then :func:`guarded`.

``check_endpoint`` applies the outbound guard of :mod:`flows.net` to a provider's API URL.
Private networks are fine (enterprise installs of GitHub or Jira live there); loopback,
link-local and cloud metadata addresses are refused unless ``GORAX_HTTP_ALLOWED_NETWORKS``
allows them, so a credential's base URL cannot be aimed at the worker's own metadata service.

``guarded`` checks the (integration, tenant) circuit breaker, waits for the provider's rate
limit, runs the call, and turns whatever went wrong into an :class:`IntegrationError` that names
the call, the status and the provider's message, with the node's secrets masked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from blocks.redact import mask_with
from flows import tracing
from flows.errors import BlockedAddressError, CircuitOpenError, IntegrationError
from flows.integrations import ratelimit
from flows.integrations.breaker import breaker_for
from flows.net import Destination, Network, check_url
from flows.settings import get_settings

#: Provider messages longer than this are cut: an error is for people, not a response dump.
_MAX_PROVIDER_MESSAGE = 500

#: Exception class names that mean "could not reach the service" across httpx, aiohttp,
#: botocore, smtplib and the standard library (matched by name: those libraries load lazily).
_NETWORK_ERRORS = {
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ReadError",
    "RemoteProtocolError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "SMTPServerDisconnected",
    "SMTPConnectError",
    "ConnectionError",
    "TimeoutError",
    "APIConnectionError",
    "Timeout",
}


def _is_network_error(exc: BaseException) -> bool:
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__) or isinstance(
        exc, (OSError, asyncio.TimeoutError)
    )


def _masked(exc: IntegrationError, secrets: list[str]) -> IntegrationError:
    return type(exc)(
        exc.integration,
        mask_with(exc.operation, secrets),
        mask_with(exc.reason, secrets),
        status=exc.status,
        provider_message=mask_with(exc.provider_message, secrets) if exc.provider_message else None,
        retryable=exc.retryable,
    )


def endpoint_networks() -> list[Network]:
    """The networks an integration's API may be on although loopback: the operator's."""
    return get_settings().runtime.allowed_networks


async def check_endpoint(url: str, integration: str, operation: str) -> Destination:
    """Raise :class:`IntegrationError` unless ``url``'s host may be reached; where to send to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IntegrationError(integration, operation, f"API URL {url!r} is not an absolute http(s) URL")
    try:
        return await check_url(url, allowed=endpoint_networks(), allow_private=True)
    except BlockedAddressError as exc:
        raise IntegrationError(integration, operation, f"API URL refused: {exc}") from None


def provider_message(body: Any) -> str | None:
    """The human part of an error body, whatever the provider's shape.

    Slack ``{"ok": false, "error": "channel_not_found"}``, GitHub ``{"message": ...}``, Jira
    ``{"errorMessages": [...], "errors": {...}}``, PagerDuty ``{"error": {"message", "errors"}}``,
    OpenAI ``{"error": {"message": ...}}``; else the text itself.
    """
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.strip()
            return text[:_MAX_PROVIDER_MESSAGE] or None
    if not isinstance(body, dict):
        return json.dumps(body)[:_MAX_PROVIDER_MESSAGE]
    pieces: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):
        if error.get("message"):
            pieces.append(str(error["message"]))
        if isinstance(error.get("errors"), list):
            pieces.extend(str(e) for e in error["errors"])
    elif isinstance(error, str):
        pieces.append(error)
    if body.get("message"):
        pieces.append(str(body["message"]))
    if isinstance(body.get("errorMessages"), list):
        pieces.extend(str(e) for e in body["errorMessages"])
    if isinstance(body.get("errors"), dict) and body["errors"]:
        pieces.extend(f"{k}: {v}" for k, v in body["errors"].items())
    elif isinstance(body.get("errors"), list):
        pieces.extend(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in body["errors"])
    text = "; ".join(pieces) if pieces else json.dumps(body)
    return text[:_MAX_PROVIDER_MESSAGE]


@asynccontextmanager
async def guarded(
    integration: str,
    operation: str,
    *,
    tenant: str | None,
    secrets: Iterable[str | None] = (),
) -> AsyncIterator[None]:
    """Run one call to ``integration`` under its breaker and rate limit, with masked errors."""
    secret_list = [s for s in secrets if s]
    breaker = breaker_for(integration, tenant)
    breaker.before_call(operation)
    try:
        # Waiting for our own rate limit says nothing about the service: not a breaker event.
        await ratelimit.acquire(integration, operation)
    except BaseException:
        breaker.release_trial()
        raise
    # One client span per call (HTTP, LLM, database, AWS, mail...), named after the service and
    # what was asked of it (masked: a target's label may come from a credential).
    shown = mask_with(operation, secret_list)
    try:
        with tracing.client_span(
            f"{integration} {shown}", {"gorax.integration": integration, "gorax.operation": shown}
        ):
            yield
    except CircuitOpenError:
        raise
    except IntegrationError as exc:
        # A 4xx shows the service is up and answering: only its own failures trip the breaker.
        breaker.record_failure() if exc.retryable else breaker.record_success()
        raise _masked(exc, secret_list) from None
    except Exception as exc:
        network = _is_network_error(exc)
        breaker.record_failure() if network else breaker.release_trial()
        reason = mask_with(f"{type(exc).__name__}: {exc}".rstrip(": "), secret_list)
        # ``from None``: the original traceback may carry the secret in its frames' text.
        raise IntegrationError(integration, operation, reason, retryable=network) from None
    else:
        breaker.record_success()
