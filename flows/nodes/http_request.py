"""``http.request``: call an HTTP API through the outbound guard (:mod:`flows.net`).

The node builds the request (headers, query, one body, an ``http-auth`` credential), sends it
with :func:`flows.net.send` (pinned to the checked address, redirects re-checked, body capped)
and turns the answer into ``{status, headers, body}``, JSON decoded when it is JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flows.errors import HttpStatusError, RunError
from flows.integrations import credentials as creds
from flows.net import send
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, block_name


class HttpOutput(BaseModel):
    """What an HTTP request node gives: the response's status, headers and decoded body."""

    model_config = ConfigDict(extra="forbid")
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class HttpRequest(NodeType):
    type = "http.request"
    version = 1
    display_name = "HTTP request"
    category = "http"
    description = "Send an HTTP request; the output is {status, headers, body} with JSON bodies decoded."
    icon = "globe"
    example = {"method": "GET", "url": "https://api.example.com/orders/{{ trigger.id }}"}
    output_schema = {
        "type": "object",
        "properties": {
            "status": {"type": "integer", "description": "The HTTP status code."},
            "headers": {"type": "object", "description": "Response headers."},
            "body": {"description": "The body: parsed JSON, text, or {base64} for binary content."},
        },
    }
    credential_types = ("http-auth", "oauth2-connection")
    Output = HttpOutput

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
            description="Name of an http-auth credential (bearer, basic or API key) or an OAuth 2.0 "
            "connection (bearer, refreshed on a 401 and sent again once) applied to the request.",
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
        fail_on_status: bool = Field(default=True, description="Fail the node (and retry it) on a 4xx/5xx response.")

        @model_validator(mode="after")
        def _one_body(self) -> HttpRequest.Config:
            bodies = [
                n for n, v in (("json", self.json_body), ("form", self.form), ("body", self.body)) if v is not None
            ]
            if len(bodies) > 1:
                raise ValueError(f"set at most one body: {', '.join(bodies)} given")
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """httpx sends the request; an ``http-auth`` credential becomes a Secret Block of headers."""
        if not config.get("credential"):
            return Ejected(body="return http_request(config)", imports=("import httpx",), helpers=(_EJECT_HELPER,))
        return Ejected(
            body='return http_request(config, Secret.load(config["credential"]).get())',
            imports=("import httpx", "from prefect.blocks.system import Secret"),
            helpers=(_EJECT_HELPER,),
            blocks=(
                ("Secret", block_name(str(config["credential"])), "a JSON object of the headers that authenticate"),
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Send the request; the output is ``{status, headers, body}``."""
        credential = await ctx.credential(config.credential) if config.credential else None
        reply = await self._send(config, ctx, credential)
        if reply.status == 401 and credential is not None and config.credential:
            # An OAuth connection whose token the provider refused: refreshed once, sent once more.
            if await creds.refresh_rejected(ctx, config.credential, credential):
                reply = await self._send(config, ctx, credential)
        result = {
            "status": reply.status,
            "headers": dict(reply.headers.items()),
            "body": _decode(reply.content, reply.headers.get("content-type", "")),
        }
        if config.fail_on_status and reply.status >= 400:
            preview = reply.content[:300].decode("utf-8", "replace")
            raise HttpStatusError(
                f"{reply.method} {reply.url} answered {reply.status}: {preview}", node_id=ctx.node_id, response=result
            )
        return result

    async def _send(self, config: Config, ctx: NodeContext, credential: Any) -> Any:
        """Send the request once, with ``credential``'s auth (if any) applied."""
        headers = dict(config.headers)
        query: dict[str, Any] = dict(config.query)
        credential_headers: list[str] = []
        if credential is not None:
            before = dict(headers)
            _apply_credential(credential, headers, query)
            # What the credential set stays on its origin (flows.net drops it on a redirect away).
            credential_headers = [name for name, value in headers.items() if before.get(name) != value]
        return await send(
            config.method,
            config.url,
            allowed=ctx.allowed_networks,
            allow_private=config.allow_private,
            headers=headers,
            params=query or None,
            json=config.json_body,
            data=config.form,
            content=config.body.encode() if config.body is not None else None,
            timeout=config.timeout_seconds,
            follow_redirects=config.follow_redirects,
            max_redirects=config.max_redirects,
            max_bytes=config.max_response_bytes,
            origin_headers=credential_headers,
        )


_EJECT_HELPER = '''def http_request(config: dict[str, Any], auth: dict[str, str] | None = None) -> Any:
    """Send an HTTP request: {status, headers, body}, a JSON body decoded."""
    response = httpx.request(
        config.get("method", "GET"),
        config["url"],
        headers={**config.get("headers", {}), **(auth or {})},
        params=config.get("query") or None,
        json=config.get("json"),
        data=config.get("form"),
        content=config.get("body"),
        timeout=config.get("timeout_seconds", 30),
        follow_redirects=config.get("follow_redirects", True),
    )
    body: Any = response.text or None
    if "json" in response.headers.get("content-type", ""):
        body = response.json()
    if response.status_code >= 400 and config.get("fail_on_status", True):
        request = response.request
        message = f"{request.method} {request.url} answered {response.status_code}"
        raise RuntimeError(f"{message}: {response.text[:300]}")
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": body,
    }'''


def _apply_credential(credential: Any, headers: dict[str, str], query: dict[str, Any]) -> None:
    """Add a credential's auth to a request through its ``apply_http_auth`` hook (``http-auth`` Blocks)."""
    hook = getattr(credential, "apply_http_auth", None)
    if not callable(hook):
        kind = getattr(credential, "block_type_slug", None) or type(credential).__name__
        raise RunError(
            f"a {kind} credential cannot authenticate an HTTP request; use an http-auth credential "
            "or an OAuth 2.0 connection"
        )
    hook(headers, query)


def _decode(content: bytes, content_type: str) -> Any:
    """A body as data: JSON decoded when it says it is JSON, else text, else base64."""
    if not content:
        return None
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(content).decode()}
