"""Acme's credential type, registered with Prefect by this module's ``prefect.collections`` entry
point alone: no Gorax file names it, yet Gorax offers it (``blocks.catalog``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from blocks.types import GoraxCredential


class AcmeToken(GoraxCredential):
    """An Acme API token."""

    _block_type_name = "Acme Token"
    _block_type_slug = "acme-token"

    token: SecretStr = Field(description="Acme API token.")
