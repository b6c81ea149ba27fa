"""Declarative base, portable column types and the tenant mixin every tenant table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, ForeignKey, MetaData, Result, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from blocks.randomness import uuid4

# Stable constraint names so alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A new primary key (UUID4 text, portable across databases; random bytes from a pool)."""
    return str(uuid4())


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def affected_rows(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (SQLAlchemy types ``session.execute`` as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every Gorax table."""

    metadata = MetaData(naming_convention=NAMING)


class TenantScoped:
    """Mixin for tables whose rows belong to one tenant.

    Such tables get a ``tenant_id`` column and, on PostgreSQL, a row-level-security policy
    (see :mod:`api.db.rls`); every service query still filters on ``tenant_id``.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:  # noqa: N805 - declared_attr convention
        return mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), index=True, nullable=False)
