"""First-run bootstrap: a first tenant and admin for a fresh state directory."""

from __future__ import annotations

from typing import Any

from api.db.engine import Database
from api.services.identity import count_tenants, create_tenant_with_admin
from flows.settings import GoraxSettings, get_settings

DEFAULT_TENANT = "Default"
DEFAULT_ADMIN = "admin@gorax.local"


async def bootstrap_first_tenant(
    settings: GoraxSettings | None = None,
    *,
    name: str = DEFAULT_TENANT,
    admin_email: str = DEFAULT_ADMIN,
) -> dict[str, Any] | None:
    """Create a first tenant, admin and admin API key when the database has no tenant.

    Runs migrations first. Returns ``{tenant_id, email, password, api_key}`` (shown once), or
    None when a tenant already exists.
    """
    settings = settings or get_settings()
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        if await count_tenants(db) > 0:
            return None
        return await create_tenant_with_admin(db, name=name, admin_email=admin_email)
    finally:
        await db.dispose()
