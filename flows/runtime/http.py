"""What ``http.request`` does at run time: a guarded httpx request with bounded redirects and body."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import httpx

from flows.runtime.errors import ResponseTooLarge, RunError
from flows.runtime.netguard import resolve_checked

if TYPE_CHECKING:
    from flows.nodes.http_request import HttpRequest

_REDIRECTS = {301, 302, 303, 307, 308}


class HttpStatusError(RunError):
    """The server answered 4xx/5xx and the node fails on status."""

    def __init__(self, message: str, *, node_id: str, response: dict[str, Any]) -> None:
        self.response = response
        super().__init__(message, node_id=node_id)


def apply_credential(credential: Any, headers: dict[str, str], query: dict[str, Any]) -> None:
    """Add a credential's auth to a request through its ``apply_http_auth`` hook (``http-auth`` Blocks)."""
    hook = getattr(credential, "apply_http_auth", None)
    if not callable(hook):
        kind = getattr(credential, "block_type_slug", None) or type(credential).__name__
        raise RunError(f"a {kind} credential cannot authenticate an HTTP request; use an http-auth credential")
    hook(headers, query)


async def _read_capped(response: httpx.Response, limit: int, node_id: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(
            f"response of {declared} bytes is larger than max_response_bytes ({limit})", node_id=node_id
        )
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(
                f"response is larger than max_response_bytes ({limit})", node_id=node_id
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(content: bytes, content_type: str) -> Any:
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


async def send_request(config: "HttpRequest.Config", ctx: Any) -> dict[str, Any]:
    """Send the request; returns ``{status, headers, body}`` (JSON decoded when it is JSON)."""
    headers = dict(config.headers)
    query: dict[str, Any] = dict(config.query)
    if config.credential:
        apply_credential(await ctx.credential(config.credential), headers, query)
    kwargs: dict[str, Any] = {"headers": headers, "params": query or None}
    if config.json_body is not None:
        kwargs["json"] = config.json_body
    elif config.form is not None:
        kwargs["data"] = config.form
    elif config.body is not None:
        kwargs["content"] = config.body.encode()
    allowed = ctx.allowed_networks
    url = httpx.URL(config.url)
    method = config.method
    timeout = httpx.Timeout(config.timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for hop in range(config.max_redirects + 1):
            if url.scheme not in ("http", "https"):
                raise RunError(f"URL scheme {url.scheme!r} is not http or https: {url}", node_id=ctx.node_id)
            request = client.build_request(method, url, **kwargs)
            ip = await resolve_checked(
                url.host, url.port or (443 if url.scheme == "https" else 80),
                allowed=allowed, allow_private=config.allow_private,
            )
            if str(ip) != url.host.strip("[]"):
                # Connect to the checked address; Host and TLS server name stay the original name.
                request.url = request.url.copy_with(host=str(ip))
                request.extensions["sni_hostname"] = url.host
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS and config.follow_redirects and "location" in response.headers:
                    if hop == config.max_redirects:
                        raise RunError(
                            f"more than max_redirects ({config.max_redirects}) redirects from {config.url}",
                            node_id=ctx.node_id,
                        )
                    target = url.join(response.headers["location"])
                    if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                        # Credentials never follow a redirect to another origin.
                        headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
                        kwargs["headers"] = headers
                    url = target
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method = "GET"
                        kwargs = {"headers": headers}
                    continue
                content = await _read_capped(response, config.max_response_bytes, ctx.node_id)
            finally:
                await response.aclose()
            result = {
                "status": response.status_code,
                "headers": {k: v for k, v in response.headers.items()},
                "body": _decode(content, response.headers.get("content-type", "")),
            }
            if config.fail_on_status and response.status_code >= 400:
                preview = content[:300].decode("utf-8", "replace")
                raise HttpStatusError(
                    f"{method} {url} answered {response.status_code}: {preview}",
                    node_id=ctx.node_id,
                    response=result,
                )
            return result
    raise AssertionError("unreachable")  # pragma: no cover
