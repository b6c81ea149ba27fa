"""Exception handlers: every error leaves the API as the shared error body.

Errors of Prefect's API become answers a client can act on, never a 500: what Prefect refused
as invalid is a 422 (409, 413 and 404 keep their meaning), Prefect failing or refusing Gorax's
own credentials is a 502, Prefect out of reach or busy a 503. Their bodies are never logged or
passed on whole: Prefect echoes the request it refused, which may be megabytes of a user's data.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import (
    ApiError,
    BadGateway,
    BodyTooLarge,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    ValidationFailed,
    error_body,
)
from api.mcp import MCP_PATH, jsonrpc_error
from api.observability import request_id_var

log = logging.getLogger("gorax.api")

_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    504: "TIMEOUT",
}
#: How much of an error body of Prefect's is read for its messages, and how many are kept.
_UPSTREAM_HEAD = 64 * 1024
_UPSTREAM_PROBLEMS = 5
_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.){0,300})')


def _response(
    status: int, code: str, message: str, details: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details, request_id_var.get()),
        status_code=status,
        headers=headers or None,
    )


def _unstorable() -> JSONResponse:
    return _response(
        400,
        "VALIDATION_ERROR",
        "a value cannot be stored: it is too long or contains characters that are not allowed "
        "(NUL, unpaired surrogates)",
        {},
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        errors.append(
            {
                "field": loc[-1] if loc else None,
                "path": ".".join(loc),
                "code": err.get("type", "invalid"),
                "message": err.get("msg", "invalid value"),
            }
        )
    return errors


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def _upstream_problems(response: httpx.Response) -> list[str]:
    """Prefect's own words for what it refused, without the values it echoes."""
    content = response.content
    if len(content) <= _UPSTREAM_HEAD:
        try:
            body = json.loads(content)
        except ValueError:
            return [_short(content.decode("utf-8", "replace"))] if content else []
        if isinstance(body, dict) and isinstance(body.get("exception_detail"), list):
            return [
                _short(
                    ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                    + ": "
                    + str(item.get("msg", "invalid"))
                )
                for item in body["exception_detail"][:_UPSTREAM_PROBLEMS]
                if isinstance(item, dict)
            ]
        detail = body.get("detail") if isinstance(body, dict) else None
        return [_short(str(detail))] if detail else []
    # A large body echoes what was sent; the messages come first, so read only the head.
    head = content[:_UPSTREAM_HEAD].decode("utf-8", "replace")
    return [_short(match) for match in _MSG.findall(head)[:_UPSTREAM_PROBLEMS]]


def prefect_error(exc: httpx.HTTPStatusError) -> ApiError:
    """The API error for an error status from Prefect's API (or another HTTP service)."""
    upstream = exc.response.status_code
    where = f"{exc.request.method} {exc.request.url.path}"
    problems = _upstream_problems(exc.response) if 400 <= upstream < 500 else []
    details: dict[str, Any] = {"upstream_status": upstream, "problems": problems}
    said = f": {'; '.join(problems)}" if problems else ""
    if upstream == 404:
        return NotFound(f"not found in Prefect ({where}){said}", details=details)
    if upstream == 409:
        return Conflict(f"Prefect refused the change as a conflict{said}", details=details)
    if upstream == 413:
        return PayloadTooLarge(f"Prefect refused the request as too large{said}", details=details)
    if upstream in (400, 422):
        return ValidationFailed(f"Prefect refused the request as invalid{said}", details=details)
    if upstream == 429:
        retry = exc.response.headers.get("retry-after")
        return Unavailable(
            "Prefect is busy; retry later", details=details, headers={"Retry-After": retry} if retry else None
        )
    # 401/403 (Gorax's own credentials for Prefect), 5xx: not the client's doing.
    return BadGateway(f"Prefect answered {upstream} to {where}", details=details)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the error body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if request.url.path.rstrip("/") == MCP_PATH:
            # An MCP client reads a JSON-RPC error (refused key, rate limit) as an MCP error.
            return JSONResponse(jsonrpc_error(exc), status_code=exc.status_code, headers=exc.headers or None)
        return _response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {}
        message = f"invalid request: {first.get('path')}: {first.get('message')}" if errors else ("invalid request")
        return _response(422, "VALIDATION_ERROR", message, {"errors": errors})

    # JSON may carry text no database can store (unpaired surrogates, NUL on PostgreSQL, values
    # longer than a column). That is bad input, wherever it surfaces, not a server fault.
    @app.exception_handler(UnicodeError)
    async def _unicode(_: Request, exc: UnicodeError) -> JSONResponse:
        return _unstorable()

    @app.exception_handler(StatementError)
    async def _statement(_: Request, exc: StatementError) -> JSONResponse:
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", ""))
        # SQLSTATE class 22 is "data exception": the value, not the server, is at fault.
        if isinstance(exc, DataError) or isinstance(exc.orig, UnicodeError) or sqlstate.startswith("22"):
            return _unstorable()
        raise exc

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return _response(413, PayloadTooLarge.code, str(exc.detail), exc.details, dict(exc.headers or {}))

    @app.exception_handler(httpx.HTTPStatusError)
    async def _upstream_status(request: Request, exc: httpx.HTTPStatusError) -> JSONResponse:
        error = prefect_error(exc)
        # Status and place only: the response echoes the request, the request may be huge.
        log.warning(
            "Prefect answered an error",
            extra={
                "upstream_status": exc.response.status_code,
                "upstream": exc.request.url.path,
                "path": request.url.path,
                "status": error.status_code,
            },
        )
        return _response(error.status_code, error.code, error.message, error.details, error.headers)

    @app.exception_handler(httpx.TransportError)
    async def _upstream_unreachable(request: Request, exc: httpx.TransportError) -> JSONResponse:
        log.warning("Prefect cannot be reached", extra={"error": type(exc).__name__, "path": request.url.path})
        return _response(
            503, Unavailable.code, "Prefect cannot be reached right now; retry later", {"error": type(exc).__name__}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "BAD_REQUEST")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return _response(exc.status_code, code, message, {}, dict(exc.headers or {}))
