"""Errors of the credentials package.

::

    CredentialError
    ├── CredentialNotFound        no such credential for this tenant
    ├── CredentialInputError      bad name, unknown type, invalid values (``details`` per field)
    ├── SealedValueError          a sealed value is malformed or fails to open
    └── KeyProviderError          a key-encryption key is missing, wrong or unreachable

Messages never contain secret values: they name the tenant, credential, field and key ids.
"""

from __future__ import annotations

from typing import Any


class CredentialError(Exception):
    """Base of every credentials error; ``code`` maps to the API error body."""

    code = "credential_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class CredentialNotFound(CredentialError):
    """The tenant has no credential with that name or id."""

    code = "credential_not_found"


class CredentialInputError(CredentialError):
    """A name, type or value the caller sent is not acceptable."""

    code = "credential_invalid"


class SealedValueError(CredentialError):
    """A sealed value is malformed, altered, moved, or sealed under another key."""

    code = "credential_sealed_value"


class KeyProviderError(CredentialError):
    """The key provider cannot supply, wrap or unwrap a key."""

    code = "key_provider_error"
