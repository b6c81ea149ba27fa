"""``http.request``: call an HTTP API (httpx, async) with an SSRF guard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from flows.nodes._common import HTTP_AUTH
from translator.nodetypes import NodeConfig, NodeContext, NodeType


class HttpRequest(NodeType):
    type = "http.request"
    version = 1
    display_name = "HTTP request"
    category = "http"
    description = "Send an HTTP request; the output is {status, headers, body} with JSON bodies decoded."
    credential_types = (HTTP_AUTH,)

    class Config(NodeConfig):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

        method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = Field(
            default="GET", description="HTTP method."
        )
        url: str = Field(min_length=1, description="Absolute http(s) URL; templates allowed.")
        headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
        query: dict[str, Any] = Field(
            default_factory=dict, description="Query parameters added to the URL (lists repeat the key)."
        )
        json_body: Any = Field(
            default=None, alias="json", description="A JSON body (sets Content-Type: application/json)."
        )
        form: dict[str, Any] | None = Field(
            default=None, description="A form body (application/x-www-form-urlencoded)."
        )
        body: str | None = Field(default=None, description="A raw text body, sent as is.")
        credential: str | None = Field(
            default=None,
            description="Name of an http-auth credential (bearer, basic or API key) applied to the request.",
        )
        timeout_seconds: float = Field(
            default=30, gt=0, le=600, description="Connect and read timeout of one attempt, in seconds."
        )
        max_response_bytes: int = Field(
            default=10 * 1024 * 1024,
            ge=1,
            le=100 * 1024 * 1024,
            description="Largest response body read; a bigger one fails the node.",
        )
        follow_redirects: bool = Field(default=True, description="Follow 3xx redirects.")
        max_redirects: int = Field(default=5, ge=0, le=20, description="Most redirects followed.")
        allow_private: bool = Field(
            default=False,
            description="Allow private-network addresses (10/8, 172.16/12, 192.168/16, fc00::/7). "
            "Loopback, link-local and cloud-metadata addresses stay refused unless the operator "
            "allows their network (GORAX_HTTP_ALLOWED_NETWORKS).",
        )
        fail_on_status: bool = Field(
            default=True, description="Fail the node (and retry it) on a 4xx/5xx response."
        )

        @model_validator(mode="after")
        def _one_body(self) -> "HttpRequest.Config":
            bodies = [n for n, v in (("json", self.json_body), ("form", self.form), ("body", self.body)) if v is not None]
            if len(bodies) > 1:
                raise ValueError(f"set at most one body: {', '.join(bodies)} given")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Send the request through the guarded client."""
        from flows.runtime.http import send_request

        return await send_request(config, ctx)
