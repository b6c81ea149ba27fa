"""Service-level objectives: the success rate an admin expects of a workflow over a window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class WorkflowSlo(TenantScoped, Base):
    """A workflow's objective: ``target`` (e.g. 0.99) of its finished runs succeed over the last
    ``window_days`` days. At most one per workflow; its error budget is ``1 - target``."""

    __tablename__ = "workflow_slos"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workflows.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    target: Mapped[float] = mapped_column(Float, nullable=False)
    window_days: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
