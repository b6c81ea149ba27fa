"""Drafts in the database: each workflow's document as the Yjs updates every replica appended.

The rows of a workflow, applied in any order and any number of times, make its document (Yjs
updates commute and are idempotent), so replicas append without coordinating. Compaction
replaces the rows it read by their merge; a row appended meanwhile is not among them and stays.
Reads never write: a request that holds SQLite's write lock may read a draft.
"""

from __future__ import annotations

from pycrdt import merge_updates
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.models.drafts import DraftUpdate
from api.models.workflows import Workflow


class DraftLog:
    """Reads and appends the draft updates of workflows, in tenant-scoped transactions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def load(self, *, tenant_id: str, workflow_id: str) -> list[bytes]:
        """Every stored update of the workflow's draft (empty when it has none)."""
        return [data for _seq, data in await self._rows(tenant_id, workflow_id)]

    async def _rows(self, tenant_id: str, workflow_id: str) -> list[tuple[int, bytes]]:
        async with self.database.tenant_scope(tenant_id=tenant_id) as session:
            rows = (
                await session.execute(
                    select(DraftUpdate.seq, DraftUpdate.data)
                    .where(DraftUpdate.tenant_id == tenant_id, DraftUpdate.workflow_id == workflow_id)
                    .order_by(DraftUpdate.seq)
                )
            ).all()
        return [(row.seq, bytes(row.data)) for row in rows]

    async def compact(self, *, tenant_id: str, workflow_id: str) -> int:
        """Replace the workflow's rows by their merge; the number of rows there were."""
        rows = await self._rows(tenant_id, workflow_id)
        if len(rows) > 1:
            merged = merge_updates(*(data for _seq, data in rows))
            await self._replace(tenant_id, workflow_id, [seq for seq, _data in rows], merged)
        return len(rows)

    async def append(self, *, tenant_id: str, workflow_id: str, update: bytes) -> None:
        """Store one update (committed when this returns)."""
        async with self.database.tenant_scope(tenant_id=tenant_id) as session, session.begin():
            session.add(DraftUpdate(tenant_id=tenant_id, workflow_id=workflow_id, data=update))

    async def append_in(self, session: AsyncSession, *, tenant_id: str, workflow_id: str, update: bytes) -> None:
        """Store one update in the caller's transaction (it commits or rolls back with it)."""
        session.add(DraftUpdate(tenant_id=tenant_id, workflow_id=workflow_id, data=update))
        await session.flush()

    async def _replace(self, tenant_id: str, workflow_id: str, seqs: list[int], merged: bytes) -> None:
        # One transaction: the merge is stored before the rows it holds go. Two replicas
        # compacting at once store two equal merges, which is harmless.
        async with self.database.tenant_scope(tenant_id=tenant_id) as session, session.begin():
            session.add(DraftUpdate(tenant_id=tenant_id, workflow_id=workflow_id, data=merged))
            await session.execute(
                delete(DraftUpdate).where(
                    DraftUpdate.tenant_id == tenant_id,
                    DraftUpdate.workflow_id == workflow_id,
                    DraftUpdate.seq.in_(seqs),
                )
            )

    async def tenant_of(self, workflow_id: str) -> str | None:
        """The tenant of a workflow (None when it does not exist), read across tenants."""
        async with self.database.system_scope() as session:
            return (await session.execute(select(Workflow.tenant_id).where(Workflow.id == workflow_id))).scalar()

    async def delete(self, *, tenant_id: str, workflow_id: str) -> None:
        """Forget the workflow's draft."""
        async with self.database.tenant_scope(tenant_id=tenant_id) as session, session.begin():
            await session.execute(
                delete(DraftUpdate).where(DraftUpdate.tenant_id == tenant_id, DraftUpdate.workflow_id == workflow_id)
            )
