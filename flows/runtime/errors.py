"""Errors of the runtime, one hierarchy::

    RunError                  a node or the run failed; names the node (and attempt when known)
    ├── NodeFailed            a node raised; the message is masked and names node and attempt
    ├── BlockedAddressError   http.request refused a destination (SSRF guard)
    ├── ResponseTooLarge      http.request got a bigger body than max_response_bytes
    └── CredentialsUnavailable  no credential loader, or the credential does not exist
"""

from __future__ import annotations


class RunError(Exception):
    """Base of runtime errors."""

    def __init__(self, message: str, *, node_id: str | None = None) -> None:
        self.node_id = node_id
        super().__init__(message)


class NodeFailed(RunError):
    """A node failed; ``str()`` is masked and says which node and attempt.

    ``fails_run``: the failure is the run's setup, not the node's work (a tenant variable that is
    not defined), so it fails the run whatever the node's ``on_error`` says.
    """

    def __init__(self, message: str, *, node_id: str, attempt: int | None = None, kind: str = "",
                 fails_run: bool = False) -> None:
        self.attempt = attempt
        self.kind = kind
        self.fails_run = fails_run
        super().__init__(message, node_id=node_id)


class BlockedAddressError(RunError):
    """The destination resolves to an address http.request may not reach."""


class ResponseTooLarge(RunError):
    """The response body is larger than the node allows."""


class CredentialsUnavailable(RunError):
    """The credential cannot be loaded here."""

