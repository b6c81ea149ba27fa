"""Exception handlers: every error leaves the API as the shared error body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, BodyTooLarge, PayloadTooLarge, error_body
from api.observability import request_id_var

_HTTP_CODES = {
    400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
    429: "RATE_LIMITED", 504: "TIMEOUT",
}


def _response(status: int, code: str, message: str, details: dict[str, Any] | None,
              headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details, request_id_var.get()), status_code=status,
        headers=headers or None,
    )


def _unstorable() -> JSONResponse:
    return _response(
        400, "VALIDATION_ERROR",
        "a value cannot be stored: it is too long or contains characters that are not allowed "
        "(NUL, unpaired surrogates)", {},
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        errors.append({
            "field": loc[-1] if loc else None,
            "path": ".".join(loc),
            "code": err.get("type", "invalid"),
            "message": err.get("msg", "invalid value"),
        })
    return errors


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the error body."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {}
        message = f"invalid request: {first.get('path')}: {first.get('message')}" if errors else (
            "invalid request"
        )
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
        return _response(413, PayloadTooLarge.code, str(exc.detail), exc.details,
                         dict(exc.headers or {}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500
                               else "BAD_REQUEST")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return _response(exc.status_code, code, message, {}, dict(exc.headers or {}))
