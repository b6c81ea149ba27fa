"""The Gorax database: one async engine, tenant-scoped and system sessions, migrations.

A *tenant session* sets ``app.tenant_id`` at the start of every transaction, so on PostgreSQL
row-level security hides other tenants' rows even from a query that forgot its filter. A
*system session* is for the few cross-tenant reads that happen before a tenant is known
(sign-in, API-key lookup, bootstrap, CLI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from api.db.rls import APP_ROLE

_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


@event.listens_for(Session, "after_begin")
def _scope_transaction(session: Session, transaction: Any, connection: Any) -> None:
    # Runs for every transaction, so a commit followed by more work stays scoped.
    if connection.dialect.name != "postgresql":
        return
    tenant_id = session.info.get("tenant_id")
    system = session.info.get("system", False)
    connection.execute(
        text("SELECT set_config('app.tenant_id', :t, true), set_config('app.system', :s, true)"),
        {"t": tenant_id or "", "s": "on" if system else "off"},
    )


def _configure_sqlite(engine: AsyncEngine | Engine) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL itself waits for the database lock.
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _set_role(dbapi_connection: Any, _record: Any) -> None:
        # Drop to the non-superuser, non-owner role so RLS policies apply to the app. Run on the
        # driver's connection, outside a transaction: through the adapter's cursor it ran in the
        # connection's first transaction, and when that one rolled back (a statement failed) the
        # role went back to the login user, which bypasses RLS and the audit log's privileges.
        dbapi_connection.run_async(lambda conn: conn.execute(f"SET ROLE {APP_ROLE}"))


class Database:
    """Engine plus session factories for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": self.dialect != "sqlite"}
        if self.dialect == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        elif self.dialect == "postgresql":
            _configure_postgres(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self, *, tenant_id: str) -> AsyncSession:
        """A session whose transactions see only ``tenant_id``'s rows (under RLS)."""
        if not tenant_id:
            raise ValueError("tenant_id is required for a tenant session")
        return self._sessions(info={"tenant_id": tenant_id})

    def system_session(self) -> AsyncSession:
        """A session for cross-tenant identity lookups (sign-in, API keys, bootstrap)."""
        return self._sessions(info={"system": True})

    @asynccontextmanager
    async def tenant_scope(self, *, tenant_id: str) -> AsyncIterator[AsyncSession]:
        """``async with db.tenant_scope(tenant_id=...) as session``: closed afterwards."""
        async with self.session(tenant_id=tenant_id) as session:
            yield session

    @asynccontextmanager
    async def system_scope(self) -> AsyncIterator[AsyncSession]:
        """``async with db.system_scope() as session``: closed afterwards."""
        async with self.system_session() as session:
            yield session

    def sync_engine(self) -> Engine:
        """A new synchronous engine on the same SQLite file, with the same pragmas (for work
        that runs on a thread of its own; the caller disposes of it)."""
        if self.dialect != "sqlite":
            raise ValueError("a synchronous engine is only made for SQLite")

        engine = create_engine(make_url(self.url).set(drivername="sqlite"))
        _configure_sqlite(engine)
        return engine

    async def migrate(self) -> None:
        """Upgrade the schema to the newest alembic revision (as the login user, not the app role)."""
        engine = create_async_engine(self.url)
        if self.dialect == "sqlite":
            _configure_sqlite(engine)
        try:
            async with engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Serialize concurrent starts (API and CLI) on the same database.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(7419023)"))
                await conn.run_sync(_upgrade)
        finally:
            await engine.dispose()

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _upgrade(sync_connection: Any) -> None:
    # alembic is a noticeable import that only a migration needs (the CLI opens databases too).
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config(str(_MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


_databases: dict[str, Database] = {}


def database_for(url: str) -> Database:
    """The process-wide :class:`Database` for ``url`` (one engine per URL)."""
    db = _databases.get(url)
    if db is None:
        db = _databases[url] = Database(url)
    return db
