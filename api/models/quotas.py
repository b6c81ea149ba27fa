"""Per-tenant quota overrides: what an operator set for one tenant (``gorax quotas set``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class TenantQuota(TenantScoped, Base):
    """A tenant's own limits; a column left NULL takes the operator default (``GORAX_QUOTA_*``),
    and 0 means unlimited. No row: every default."""

    __tablename__ = "tenant_quotas"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    runs_per_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrent_runs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    webhook_requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
