"""A dead letter: a trigger (a webhook delivery or a scheduled run) that did not become a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow

SOURCES = ("webhook", "schedule")
STATUSES = ("open", "replayed", "discarded")


class DeadLetter(TenantScoped, Base):
    """One trigger that did not become a run, why, and what an operator decided about it.

    ``reference`` names what it is a dead letter of (``delivery:<id>`` or ``flow-run:<id>``) and
    is unique, so sweeps on several API replicas never record the same trigger twice. The
    payload is what the run would have received: for a webhook the delivery's trigger input,
    which never holds its private headers (as in the delivery history); for a schedule the
    run's ``trigger`` parameter.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("reference", name="uq_dead_letters_reference"),
        Index("ix_dead_letters_tenant_status", "tenant_id", "status", "last_seen_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(10), nullable=False)  # webhook | schedule
    reference: Mapped[str] = mapped_column(String(80), nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(36), index=True, nullable=False)
    node_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    webhook_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    delivery_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    status: Mapped[str] = mapped_column(String(10), default="open", nullable=False)  # open|replayed|discarded
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # the discard's reason
    replay_delivery_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    replay_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
