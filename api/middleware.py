"""The outermost ASGI layer: request ids, security headers, rate-limit headers, metrics,
access logs, and a last-resort 500 in the shared error body."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.observability import Metrics, end_server_span, request_id_var, server_span
from blocks.randomness import token_hex
from flows import tracing

log = logging.getLogger("gorax.api")

_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self' ws: wss:; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'"
)
# The interactive docs load their assets from a CDN, so they get no CSP.
_NO_CSP_PATHS = ("/docs", "/redoc")


def _security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    path: str = scope.get("path", "")
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if not path.startswith(_NO_CSP_PATHS):
        headers.append((b"content-security-policy", _CSP.encode()))
    if scope.get("scheme") == "https":
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    if path.startswith("/api/"):
        headers.append((b"cache-control", b"no-store"))
    return headers


class RequestContextMiddleware:
    """Gives every request an id, decorates every response, and never leaks a traceback."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((value for name, value in scope.get("headers") or () if name == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = incoming if _INCOMING_ID.match(incoming) else f"req_{token_hex(8)}"
        token = request_id_var.set(request_id)
        # The request's span continues the caller's W3C trace context (a no-op span when traces
        # are off); it is named after the route once the router has matched one.
        try:
            with server_span(scope) as span:
                await self._handle(scope, receive, send, request_id, span)
        finally:
            request_id_var.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str, span: Any) -> None:
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(_security_headers(scope))
                decision = (scope.get("state") or {}).get("rate_limit")
                if decision is not None:
                    for key, value in decision.headers().items():
                        if key != "Retry-After" or status["code"] == 429:
                            headers.append((key.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            tracing.report_exception(exc, {"request_id": request_id, "route": _route_template(scope)})
            if scope["type"] == "http" and not status["sent"]:
                await _send_500(send_wrapper, request_id)
            status["code"] = 500
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                template = _route_template(scope)
                self.metrics.observe(scope["method"], template, status["code"], elapsed)
                principal: Any = (scope.get("state") or {}).get("principal")
                end_server_span(
                    span,
                    route=template,
                    status=status["code"],
                    tenant_id=principal.tenant_id if principal else None,
                )
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        "request",
                        extra={
                            "method": scope["method"],
                            "path": scope.get("path"),
                            "route": template,
                            "status": status["code"],
                            "duration_ms": round(elapsed * 1000, 2),
                            "actor": principal.actor if principal else None,
                            "tenant_id": principal.tenant_id if principal else None,
                        },
                    )


def _route_template(scope: Scope) -> str:
    # FastAPI records the matched route (with its router prefix) in its own scope entry.
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or "<unmatched>"


async def _send_500(send: Send, request_id: str) -> None:
    body = json.dumps(error_body("INTERNAL_ERROR", "internal server error", {}, request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
