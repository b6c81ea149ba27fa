"""API keys: ``gx_<prefix>_<secret>``, stored as prefix + SHA-256 of the secret, shown once."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Role
from api.auth.tokens import digest, new_secret
from api.db.base import utcnow
from api.errors import BadRequest, NotFound, Unauthorized
from api.models.identity import ApiKey
from api.services import audit
from api.services.audit import AuditContext

KEY_PREFIX = "gx_"
# Writing last_used_at on every request would turn reads into writes; once a minute is enough.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


def parse_key(key: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    parts = key[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


async def create_api_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    role: Role,
    created_by: str | None,
    context: AuditContext,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext (the only time it exists); the caller commits."""
    if not name.strip():
        raise BadRequest("API key name must not be empty", details={"field": "name"})
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise BadRequest("expires_at needs a timezone", details={"field": "expires_at"})
        if expires_at <= utcnow():
            raise BadRequest("expires_at is in the past", details={"field": "expires_at"})
    prefix = secrets.token_hex(6)
    secret = new_secret()
    key = ApiKey(
        tenant_id=tenant_id,
        name=name.strip(),
        prefix=prefix,
        secret_hash=digest(secret),
        role=Role(role).value,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="api_key.created",
        context=context,
        resource_type="api_key",
        resource_id=key.id,
        after={
            "name": key.name,
            "prefix": prefix,
            "role": key.role,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


async def list_api_keys(session: AsyncSession, *, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys that are not revoked, newest first."""
    rows = await session.execute(
        select(ApiKey)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at.desc())
    )
    return list(rows.scalars())


async def revoke_api_key(session: AsyncSession, *, tenant_id: str, key_id: str, context: AuditContext) -> None:
    """Revoke a key; it stops working at once."""
    key = (
        await session.execute(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        )
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(f"API key {key_id!r} not found", details={"api_key_id": key_id})
    key.revoked_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="api_key.revoked",
        context=context,
        resource_type="api_key",
        resource_id=key.id,
        before={"name": key.name, "prefix": key.prefix},
    )
    await session.commit()


async def authenticate_api_key(session: AsyncSession, key: str) -> ApiKey:
    """The live key for ``key`` (system session: the tenant is not known yet)."""
    parsed = parse_key(key)
    if parsed is None:
        raise Unauthorized("malformed API key")
    prefix, secret = parsed
    row = (await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))).scalar_one_or_none()
    # Timing-safe compare even when the prefix is unknown.
    expected = row.secret_hash if row else "0" * 64
    if not hmac.compare_digest(expected, digest(secret)) or row is None:
        raise Unauthorized("invalid API key")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("API key revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("API key expired")
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        row.last_used_at = now
        await session.commit()
    return row
