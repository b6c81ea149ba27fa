"""Retention: each tenant's chosen policy and the reports of the retention job's runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class RetentionPolicy(TenantScoped, Base):
    """A tenant's retention choices; a null column means the operator's default. No row: all defaults."""

    __tablename__ = "retention_policies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    executions_per_workflow: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step_data_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivery_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deliveries_per_webhook: Mapped[int | None] = mapped_column(Integer, nullable=True)
    audit_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Step data of runs expected to start before this was already pruned (where the next sweep resumes).
    step_data_pruned_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(120), nullable=True)


class RetentionRun(TenantScoped, Base):
    """What one run of the retention job did for one tenant."""

    __tablename__ = "retention_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)  # schedule, manual
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # completed, failed
    deleted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    batches: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
