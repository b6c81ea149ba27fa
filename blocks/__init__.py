"""Gorax credentials: Prefect Block types whose secret fields are sealed with AES-256-GCM
envelope encryption under per-tenant data keys, wrapped by a key provider (local file or KMS).

Modules, one concept each:

- ``blocks.types``     the Gorax credential Block types
- ``blocks.catalog``   every credential type (with prefect-aws / prefect-slack), secret fields, registration
- ``blocks.envelope``  the sealed-value format: seal / open one value
- ``blocks.providers`` key-encryption key providers (local key file, AWS KMS)
- ``blocks.keys``      per-tenant keyrings in Prefect Variables; the Prefect server encryption key
- ``blocks.service``   create / update / delete / list for the API
- ``blocks.loader``    ``load_credential`` for the worker (unsealed, masked, counted)
- ``blocks.redact``    ``mask`` and the logging filter
- ``blocks.rotation``  KEK and data-key rotation
- ``blocks.errors``    the error hierarchy

This package imports lazily: ``import blocks`` loads neither Prefect nor boto3.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_credential": "blocks.loader",
    "add_resolution_listener": "blocks.loader",
    "credential_values": "blocks.loader",
    "mask": "blocks.redact",
    "install_log_filter": "blocks.redact",
    "register_secret": "blocks.redact",
    "prefect_server_encryption_key": "blocks.keys",
    "credential_types": "blocks.catalog",
    "register_block_types": "blocks.catalog",
    "create_credential": "blocks.service",
    "update_credential": "blocks.service",
    "delete_credential": "blocks.service",
    "list_credentials": "blocks.service",
    "get_credential": "blocks.service",
    "CredentialError": "blocks.errors",
    "CredentialNotFound": "blocks.errors",
    "CredentialInputError": "blocks.errors",
    "SealedValueError": "blocks.errors",
    "KeyProviderError": "blocks.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'blocks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
