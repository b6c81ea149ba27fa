"""Per-tenant quota overrides: what an operator set for one tenant (``gorax quotas set``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String, UniqueConstraint
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
    agent_tokens_per_month: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    agent_cost_usd_per_month: Mapped[float | None] = mapped_column(Float, nullable=True)
    agent_tool_calls_per_month: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


class TenantAgentUsage(TenantScoped, Base):
    """What a tenant's agents used in one calendar month (UTC, ``YYYY-MM``), counted by the API
    for every worker (``POST /internal/agent-usage``)."""

    __tablename__ = "tenant_agent_usage"
    __table_args__ = (UniqueConstraint("tenant_id", "month", name="uq_tenant_agent_usage_month"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    month: Mapped[str] = mapped_column(String(7), nullable=False)
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    tool_calls: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
