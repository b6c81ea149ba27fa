"""Change stamps of credentials, so a rotated signing secret takes effect at once on every replica.

Each API replica caches signing secrets (:mod:`api.webhooks.secrets_cache`): reading Prefect per
delivery would cost a round trip each and stop intake while Prefect is down. The credentials API
gives the credential a new stamp in the Gorax database whenever it changes one; a cached secret
carries the stamp it was read under, and the delivery writer compares it with the current stamp
in the transaction that stores the delivery (:mod:`api.webhooks.batching`), a query per batch and
no round trip to Prefect. A delivery checked against an older secret is taken out there and
checked again with the secret read anew. A credential that never changed through the API has no
stamp (``None``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.webhooks.models import CredentialStamp, Webhook

StampReader = Callable[[], Awaitable[str | None]]


async def read(session: AsyncSession, *, tenant_id: str, name: str) -> str | None:
    """The current stamp of the tenant's credential ``name`` (None: never changed through the API)."""
    return (
        await session.execute(
            select(CredentialStamp.stamp).where(CredentialStamp.tenant_id == tenant_id, CredentialStamp.name == name)
        )
    ).scalar_one_or_none()


def reader(db: Database, *, tenant_id: str, name: str) -> StampReader:
    """A function reading the current stamp in a transaction of its own."""

    async def current() -> str | None:
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            return await read(session, tenant_id=tenant_id, name=name)

    return current


def session_reader(session: AsyncSession, *, tenant_id: str, name: str) -> StampReader:
    """A function reading the current stamp in ``session`` (publishing warms the cache with it)."""
    return lambda: read(session, tenant_id=tenant_id, name=name)


async def bump(session: AsyncSession, *, tenant_id: str, name: str) -> None:
    """Give credential ``name`` a new stamp, committed with the caller's transaction.

    On PostgreSQL the tenant's webhook rows are locked first, as the delivery writer reads them
    (shared) before the stamps: a batch checked against the old stamp commits before this change
    and every later batch reads the new one. On SQLite the database lock orders them.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(select(Webhook.id).where(Webhook.tenant_id == tenant_id).with_for_update())
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {"stamp": new_id(), "changed_at": utcnow()}
    await session.execute(
        insert(CredentialStamp)
        .values(id=new_id(), tenant_id=tenant_id, name=name, **values)
        .on_conflict_do_update(index_elements=["tenant_id", "name"], set_=values)
    )
