"""Errors of integration calls, and masking of secrets in what they say.

Hierarchy::

    IntegrationError          a call to an outside service failed (names integration, call, status)
    ├── CircuitOpenError      the integration's breaker for this tenant is open; no call was made
    └── SandboxError          user code in a sandbox failed or hit a limit (code.javascript)

Every message is masked before it is built (with ``blocks.redact``, Gorax's one mask): the
secrets the node used (tokens, passwords, keys) and their common encodings never appear in an
error, a log or a step output.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from blocks.redact import mask_with

#: Provider messages longer than this are cut: an error is for people, not a response dump.
_MAX_PROVIDER_MESSAGE = 500


class IntegrationError(Exception):
    """A call to an outside service failed.

    ``integration`` is the provider (``slack``, ``github``...), ``operation`` the call
    (``chat.postMessage``, ``POST /repos/{owner}/{repo}/issues``), ``status`` the HTTP status
    when there was a response, ``provider_message`` what the provider said (masked).
    ``retryable`` says whether the failure is the service's (5xx, 429, network) rather than the
    request's; only those count against the circuit breaker.
    """

    def __init__(
        self,
        integration: str,
        operation: str,
        reason: str,
        *,
        status: int | None = None,
        provider_message: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.integration = integration
        self.operation = operation
        self.reason = reason
        self.status = status
        self.provider_message = provider_message
        self.retryable = retryable
        parts = [f"{integration} {operation} failed"]
        if status is not None:
            parts.append(f"with HTTP {status}")
        text = " ".join(parts) + f": {reason}"
        if provider_message and provider_message not in reason:
            text += f" (provider said: {provider_message})"
        super().__init__(text)

    def to_dict(self) -> dict[str, Any]:
        """The error as step-output data (``on_error: continue``)."""
        return {
            "integration": self.integration,
            "operation": self.operation,
            "status": self.status,
            "message": str(self),
            "provider_message": self.provider_message,
            "retryable": self.retryable,
        }


class CircuitOpenError(IntegrationError):
    """The breaker for (integration, tenant) is open: calls fail fast until the cool-down ends."""


class SandboxError(IntegrationError):
    """User code failed inside the sandbox, or the sandbox stopped it at a limit."""


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and its encodings) replaced by ``***``: :func:`blocks.redact.mask_with`."""
    return str(mask_with(text, secrets))


def provider_message(body: Any) -> str | None:
    """The human part of an error body, whatever the provider's shape.

    Slack ``{"ok": false, "error": "channel_not_found"}``, GitHub ``{"message": ...}``, Jira
    ``{"errorMessages": [...], "errors": {...}}``, PagerDuty ``{"error": {"message", "errors"}}``,
    OpenAI ``{"error": {"message": ...}}``; else the text itself.
    """
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.strip()
            return text[:_MAX_PROVIDER_MESSAGE] or None
    if not isinstance(body, dict):
        return json.dumps(body)[:_MAX_PROVIDER_MESSAGE]
    pieces: list[str] = []
    error = body.get("error")
    if isinstance(error, dict):
        if error.get("message"):
            pieces.append(str(error["message"]))
        if isinstance(error.get("errors"), list):
            pieces.extend(str(e) for e in error["errors"])
    elif isinstance(error, str):
        pieces.append(error)
    if body.get("message"):
        pieces.append(str(body["message"]))
    if isinstance(body.get("errorMessages"), list):
        pieces.extend(str(e) for e in body["errorMessages"])
    if isinstance(body.get("errors"), dict) and body["errors"]:
        pieces.extend(f"{k}: {v}" for k, v in body["errors"].items())
    elif isinstance(body.get("errors"), list):
        pieces.extend(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in body["errors"])
    text = "; ".join(pieces) if pieces else json.dumps(body)
    return text[:_MAX_PROVIDER_MESSAGE]
