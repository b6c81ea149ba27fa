"""Size limits of what the API accepts: request bodies, graphs, variables and run inputs.

Each limit is a setting of :class:`api.config.ApiSettings`. Past one, the answer is 413 (a body or
a value too large) or 422 (a graph with too many nodes or edges), and its details name the
limit, its value and what was sent, e.g. ``{"limit": "max_body_bytes", "max": 4194304,
"sent": 52428800}``.

The body limit holds while the body is read: a declared ``Content-Length`` past it is refused
before any of the body is read, and a body without one is cut off once it passes the limit.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import ApiSettings, get_api_settings
from api.errors import BodyTooLarge, PayloadTooLarge, ValidationFailed, error_body
from api.observability import request_id_var
from translator.models import GraphLimits, LimitExceeded

#: The public webhook receiver's paths: their bodies are held to each trigger's own
#: ``max_body_bytes``, below :attr:`ApiSettings.webhook_max_body_bytes`.
WEBHOOK_PATH_PREFIX = "/webhook/"

_config_var: ContextVar[ApiSettings | None] = ContextVar("gorax_limits", default=None)


def current_limits() -> ApiSettings:
    """The settings of the app serving this request (the process's ``GORAX_*`` outside one)."""
    return _config_var.get() or get_api_settings().api


def body_limit(config: ApiSettings, path: str) -> tuple[str, int]:
    """The name and value of the body limit of a request to ``path``."""
    if path.startswith(WEBHOOK_PATH_PREFIX):
        return "webhook_max_body_bytes", config.webhook_max_body_bytes
    return "max_body_bytes", config.max_body_bytes


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Refuses request bodies past their limit while they are read, and makes the app's limits
    the current ones (:func:`current_limits`) for the request."""

    def __init__(self, app: ASGIApp, config: ApiSettings) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _config_var.set(self.config)
        try:
            name, limit = body_limit(self.config, scope["path"])
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                await _refuse(send, BodyTooLarge(name, limit, declared, declared=True))
                return
            # The server delivers no more than a declared length: only a body without one
            # (chunked) needs counting.
            await self.app(scope, receive if declared is not None else _counting(receive, name, limit), send)
        finally:
            _config_var.reset(token)


def _counting(receive: Receive, name: str, limit: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` as soon as the body passes ``limit``."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] != "http.disconnect":  # an http.request message: a part of the body
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(name, limit, seen, declared=False)
        return message

    return limited


async def _refuse(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps(error_body(PayloadTooLarge.code, exc.detail, exc.details, request_id_var.get())).encode()
    # The unread body would follow on this connection: close it after the answer.
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def graph_limits() -> GraphLimits:
    """The current app's graph limits (:class:`translator.models.GraphLimits`)."""
    config = current_limits()
    return GraphLimits(max_nodes=config.graph_max_nodes, max_edges=config.graph_max_edges)


def graph_limit_exceeded(graph: Any) -> LimitExceeded | None:
    """The graph limit ``graph`` is past, named as its setting (``graph_max_nodes``), or None."""
    over = graph_limits().exceeded(graph)
    return over.model_copy(update={"limit": f"graph_{over.limit}"}) if over else None


def check_graph(graph: Any, *, field: str = "graph") -> None:
    """:class:`ValidationFailed` (422) when ``graph`` has more nodes or edges than allowed."""
    over = graph_limit_exceeded(graph)
    if over is not None:
        raise ValidationFailed(
            over.message,
            details={
                "limit": over.limit,
                "max": over.allowed,
                "sent": over.sent,
                "field": f"{field}.{over.path}",
            },
        )


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how it travels to Prefect)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def check_json_size(value: Any, *, limit: str, field: str) -> None:
    """:class:`PayloadTooLarge` (413) when ``value`` as JSON is past the setting ``limit``."""
    allowed = int(getattr(current_limits(), limit))
    size = json_size(value)
    if size > allowed:
        raise PayloadTooLarge(
            f"{field} is {size:,} bytes as JSON; at most {allowed:,} are allowed ({limit})",
            details={"limit": limit, "max": allowed, "sent": size, "field": field},
        )
