"""Errors of ``flows/``, one hierarchy::

    GoraxRunError                 something went wrong loading or running a workflow
    ├── FlowLoadError             the worker cannot load a flow run's flow (deployment, entrypoint)
    ├── RunError                  a node or the run failed; names the node when known
    │   ├── NodeFailed            a node raised; the message is masked and names node and attempt
    │   ├── BlockedAddressError   the outbound guard refused a destination (flows.net)
    │   ├── ResponseTooLarge      a response body is bigger than the node allows (flows.net)
    │   ├── HttpStatusError       http.request got a 4xx/5xx answer and fails on status
    │   ├── CredentialsUnavailable  no credential loader, or the credential does not exist
    │   └── ApprovalExpired       nobody decided a human task before it expired
    └── IntegrationError          a call to an outside service failed (integration, call, status)
        ├── CircuitOpenError      the integration's breaker for this tenant is open; no call was made
        └── SandboxError          user code in a sandbox failed or hit a limit (code.javascript)

A step record names the class a node raised (``NodeFailed.kind``), so these class names are
part of the run-record format: rename one and old and new runs disagree.

An integration error leaves :func:`flows.integrations.guard.guarded` masked with
``blocks.redact.mask_with`` (Gorax's one mask): the secrets the node used and their common
encodings never appear in an error, a log or a step output.
"""

from __future__ import annotations

from typing import Any


class GoraxRunError(Exception):
    """Base of every error ``flows/`` raises on purpose."""


class FlowLoadError(GoraxRunError):
    """A flow run's flow cannot be loaded (no deployment, a bad entrypoint, not a flow)."""


class RunError(GoraxRunError):
    """A node or the run failed; ``node_id`` names the node when the raiser knows it."""

    def __init__(self, message: str, *, node_id: str | None = None) -> None:
        self.node_id = node_id
        super().__init__(message)


class NodeFailed(RunError):
    """A node failed; ``str()`` is masked and says which node and attempt, ``kind`` what it raised.

    ``fails_run``: the failure is the run's setup, not the node's work (a tenant variable that is
    not defined), so it fails the run whatever the node's ``on_error`` says.
    """

    def __init__(
        self, message: str, *, node_id: str, attempt: int | None = None, kind: str = "", fails_run: bool = False
    ) -> None:
        self.attempt = attempt
        self.kind = kind
        self.fails_run = fails_run
        super().__init__(message, node_id=node_id)


class BlockedAddressError(RunError):
    """The destination resolves to an address a node may not reach (or does not resolve)."""


class ResponseTooLarge(RunError):
    """The response body is larger than the node allows."""


class HttpStatusError(RunError):
    """The server answered 4xx/5xx and the node fails on status; ``response`` is what it got."""

    def __init__(self, message: str, *, node_id: str, response: dict[str, Any]) -> None:
        self.response = response
        super().__init__(message, node_id=node_id)


class CredentialsUnavailable(RunError):
    """The credential cannot be loaded here."""


class ApprovalExpired(RunError):
    """Nobody decided before the task's timeout and no escalation decided for them."""


class IntegrationError(GoraxRunError):
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
