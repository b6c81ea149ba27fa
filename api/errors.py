"""The API's error hierarchy; one handler turns each into the shared error body.

::

    ApiError (500 INTERNAL_ERROR)
    ├── BadRequest (400 VALIDATION_ERROR)
    ├── Unauthorized (401 UNAUTHORIZED)
    ├── Forbidden (403 FORBIDDEN)
    ├── NotFound (404 NOT_FOUND)
    ├── Conflict (409 CONFLICT)
    ├── PreconditionFailed (412 PRECONDITION_FAILED)
    ├── PayloadTooLarge (413 PAYLOAD_TOO_LARGE)
    ├── ValidationFailed (422 VALIDATION_ERROR)
    ├── RateLimited (429 RATE_LIMITED)
    ├── Unavailable (503 UNAVAILABLE)
    ├── BadGateway (502 BAD_GATEWAY)
    │   └── ResultUnavailable (502 RESULT_UNAVAILABLE)
    └── GatewayTimeout (504 TIMEOUT)

    BodyTooLarge (413 PAYLOAD_TOO_LARGE): a Starlette HTTPException, see its docstring

Body: ``{"error": {"code", "message", "details", "request_id"}}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """Base of every error the API reports to a client."""

    status_code = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(ApiError):
    status_code = 400
    code = "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(ApiError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(ApiError):
    status_code = 409
    code = "CONFLICT"


class PreconditionFailed(ApiError):
    status_code = 412
    code = "PRECONDITION_FAILED"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class ValidationFailed(ApiError):
    status_code = 422
    code = "VALIDATION_ERROR"


class RateLimited(ApiError):
    status_code = 429
    code = "RATE_LIMITED"


class Unavailable(ApiError):
    """Cannot be done right now; retry later (503)."""

    status_code = 503
    code = "UNAVAILABLE"


class BadGateway(ApiError):
    """A service the API depends on (Prefect) failed or answered what the API cannot use (502)."""

    status_code = 502
    code = "BAD_GATEWAY"


class ResultUnavailable(BadGateway):
    """A run completed but its result cannot be read from result storage (502): never answered as null."""

    code = "RESULT_UNAVAILABLE"


class GatewayTimeout(ApiError):
    status_code = 504
    code = "TIMEOUT"


class BodyTooLarge(StarletteHTTPException):
    """A request body past its limit (413), raised while the body is read.

    A Starlette ``HTTPException`` rather than an :class:`ApiError`: FastAPI turns any other
    exception raised while it reads a body into "400 error parsing the body".
    """

    def __init__(self, limit: str, allowed: int, sent: int, *, declared: bool) -> None:
        self.details = {"limit": limit, "max": allowed, "sent": sent}
        if declared:
            message = f"the request body is {sent:,} bytes; at most {allowed:,} are allowed ({limit})"
        else:
            message = (
                f"the request body is over {allowed:,} bytes, the most allowed ({limit}); it was refused after {sent:,}"
            )
        super().__init__(413, message, headers={"Connection": "close"})


class ErrorDetail(BaseModel):
    """The inside of an error body."""

    code: str = Field(description="Machine-readable code, e.g. NOT_FOUND.")
    message: str = Field(description="Human-readable explanation.")
    details: dict[str, Any] = Field(default_factory=dict, description="Structured context.")
    request_id: str | None = Field(default=None, description="Id of the failed request.")


class ErrorBody(BaseModel):
    """Every error response of the API."""

    error: ErrorDetail


def error_body(code: str, message: str, details: dict[str, Any] | None, request_id: str | None) -> dict[str, Any]:
    """The JSON error body as a dict."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": request_id,
        }
    }


# Declared on every router so the OpenAPI document lists the error shapes clients must handle.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid request"),
        (401, "Missing or invalid credentials"),
        (403, "Insufficient permissions"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body or value past its size limit"),
        (422, "Validation error"),
        (429, "Rate limit exceeded"),
        (500, "Server error"),
        (502, "Prefect failed or refused Gorax"),
        (503, "Prefect unreachable or busy; retry later"),
    )
}
