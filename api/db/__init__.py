"""Gorax's own database: base classes, engine and sessions, row-level security helpers."""

from __future__ import annotations

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow
from api.db.engine import Database, database_for

__all__ = ["Base", "Database", "TenantScoped", "UTCDateTime", "database_for", "new_id", "utcnow"]
