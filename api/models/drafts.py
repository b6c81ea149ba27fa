"""The shared draft of a workflow: its collaboration document as a log of Yjs updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, utcnow


class DraftUpdate(TenantScoped, Base):
    """One Yjs update of a workflow's draft document.

    The document is every row of the workflow applied in any order (Yjs updates commute and
    repeat harmlessly); every API replica appends what its editors and REST writes change, and
    compaction replaces many rows by their merge.
    """

    __tablename__ = "workflow_draft_updates"
    __table_args__ = (Index("ix_workflow_draft_updates_workflow_seq", "workflow_id", "seq"),)

    # BigInteger on PostgreSQL; SQLite autoincrements only an INTEGER primary key.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
