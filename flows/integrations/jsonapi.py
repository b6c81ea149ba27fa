"""A small JSON-over-HTTP client for REST integrations (GitHub, Jira, PagerDuty, SendGrid, Twilio)."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flows.errors import IntegrationError
from flows.integrations.guard import check_endpoint, endpoint_networks, guarded, provider_message
from flows.net import send


@dataclass(frozen=True)
class JsonReply:
    """A 2xx answer: its status, decoded body (``None`` when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class JsonApi:
    """Calls one provider's REST API with fixed auth headers, under :func:`guarded`.

    ``secrets`` are masked in every error; ``base_url`` is the provider's API root (the public
    one by default, an enterprise install or a test peer when configured). Requests go through
    :func:`flows.net.send`, to the address the base URL was checked at. ``describe_error`` turns
    an error body into the provider's message (by default :func:`provider_message`).
    ``on_unauthorized`` (an OAuth connection's refresh) gives new auth headers after a 401, and
    the request is sent once more with them.
    """

    def __init__(
        self,
        integration: str,
        base_url: str,
        *,
        tenant: str | None,
        headers: dict[str, str],
        secrets: list[str],
        timeout_seconds: float = 30,
        describe_error: Callable[[Any], str | None] = provider_message,
        on_unauthorized: Callable[[], Awaitable[dict[str, str] | None]] | None = None,
    ) -> None:
        self.integration = integration
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.headers = {"Accept": "application/json", "User-Agent": "gorax", **headers}
        self.secrets = secrets
        self.timeout_seconds = timeout_seconds
        self.describe_error = describe_error
        self.on_unauthorized = on_unauthorized

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        operation: str | None = None,
    ) -> Any:
        """Send one request; the decoded JSON body (or ``None`` for an empty one) on 2xx."""
        reply = await self.request(method, path, json=json, params=params, operation=operation)
        return reply.body

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        operation: str | None = None,
    ) -> JsonReply:
        """Send one request with a JSON or form (``data``) body; the whole answer on 2xx."""
        try:
            return await self._request_once(method, path, json=json, data=data, params=params, operation=operation)
        except IntegrationError as exc:
            if exc.status != 401 or self.on_unauthorized is None:
                raise
            headers = await self.on_unauthorized()
            if not headers:
                raise
        self.headers.update(headers)
        self.secrets = [*self.secrets, *(value.split(" ", 1)[-1] for value in headers.values())]
        return await self._request_once(method, path, json=json, data=data, params=params, operation=operation)

    async def _request_once(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        data: Mapping[str, Any] | None,
        params: dict[str, Any] | None,
        operation: str | None,
    ) -> JsonReply:
        operation = operation or f"{method} {path}"
        endpoint = await check_endpoint(self.base_url, self.integration, operation)
        async with guarded(self.integration, operation, tenant=self.tenant, secrets=self.secrets):
            reply = await send(
                method,
                self.base_url + path,
                allowed=endpoint_networks(),
                allow_private=True,
                headers=self.headers,
                params=params,
                json=json,
                data=data,
                timeout=self.timeout_seconds,
                checked=endpoint,
            )
            body: Any = None
            if reply.content:
                try:
                    body = jsonlib.loads(reply.content)
                except ValueError:
                    body = reply.text
            if reply.status >= 400:
                raise IntegrationError(
                    self.integration,
                    operation,
                    reply.reason or "error response",
                    status=reply.status,
                    provider_message=self.describe_error(body),
                    retryable=reply.status >= 500
                    or reply.status == 429
                    # GitHub's rate limit answers 403 with no requests left.
                    or (reply.status == 403 and reply.headers.get("x-ratelimit-remaining") == "0"),
                )
            return JsonReply(reply.status, body, reply.headers)
