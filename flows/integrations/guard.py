"""``guarded``: the wrapper every integration call goes through.

It checks the (integration, tenant) circuit breaker, waits for the provider's rate limit,
runs the call, and turns whatever went wrong into an :class:`IntegrationError` that names the
call, the status and the provider's message, with the node's secrets masked.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator, Iterable

from flows.integrations import ratelimit
from flows.integrations.breaker import breaker_for
from flows.integrations.errors import CircuitOpenError, IntegrationError, mask

#: Exception class names that mean "could not reach the service" across httpx, aiohttp,
#: botocore, smtplib and the standard library (matched by name: those libraries load lazily).
_NETWORK_ERRORS = {
    "ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError",
    "RemoteProtocolError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
    "ClientConnectorError", "ServerDisconnectedError", "SMTPServerDisconnected",
    "SMTPConnectError", "ConnectionError", "TimeoutError", "APIConnectionError", "Timeout",
}


def _is_network_error(exc: BaseException) -> bool:
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__) or isinstance(
        exc, (OSError, asyncio.TimeoutError)
    )


def _masked(exc: IntegrationError, secrets: list[str]) -> IntegrationError:
    return type(exc)(
        exc.integration,
        mask(exc.operation, secrets),
        mask(exc.reason, secrets),
        status=exc.status,
        provider_message=mask(exc.provider_message, secrets) if exc.provider_message else None,
        retryable=exc.retryable,
    )


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
    try:
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
        reason = mask(f"{type(exc).__name__}: {exc}".rstrip(": "), secret_list)
        # ``from None``: the original traceback may carry the secret in its frames' text.
        raise IntegrationError(integration, operation, reason, retryable=network) from None
    else:
        breaker.record_success()
