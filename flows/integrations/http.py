"""A small JSON-over-HTTP client for REST integrations (GitHub, Jira, PagerDuty)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flows.integrations.errors import IntegrationError, provider_message
from flows.integrations.guard import guarded
from flows.integrations.netcheck import check_endpoint


@lru_cache(maxsize=1)
def _ssl_context() -> Any:
    """One TLS context for every call: building it (loading the CA bundle) costs far more than
    the request itself."""
    import httpx

    return httpx.create_ssl_context()


class JsonApi:
    """Calls one provider's REST API with fixed auth headers, under :func:`guarded`.

    ``secrets`` are masked in every error; ``base_url`` is the provider's API root (the public
    one by default, an enterprise install or a test peer when configured).
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
    ) -> None:
        self.integration = integration
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.headers = {"Accept": "application/json", "User-Agent": "gorax", **headers}
        self.secrets = secrets
        self.timeout_seconds = timeout_seconds

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
        import httpx

        operation = operation or f"{method} {path}"
        await check_endpoint(self.base_url, self.integration, operation)
        async with guarded(self.integration, operation, tenant=self.tenant, secrets=self.secrets):
            async with httpx.AsyncClient(
                timeout=self.timeout_seconds, follow_redirects=False, verify=_ssl_context()
            ) as client:
                response = await client.request(
                    method, self.base_url + path, json=json, params=params, headers=self.headers
                )
            body: Any = None
            if response.content:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
            if response.status_code >= 400:
                raise IntegrationError(
                    self.integration,
                    operation,
                    response.reason_phrase or "error response",
                    status=response.status_code,
                    provider_message=provider_message(body),
                    retryable=response.status_code >= 500 or response.status_code == 429
                    # GitHub's rate limit answers 403 with no requests left.
                    or (response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"),
                )
            return body
