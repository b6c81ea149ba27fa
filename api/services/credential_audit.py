"""Credential uses into the audit log: one entry per (run, credential), naming its nodes.

Workers report each (flow run, credential, node) as a ``gorax.credential.used`` Prefect event
(:mod:`flows.runtime.credential_uses`); the SMTP credential the API unseals to e-mail about a
run's human task is recorded by the API directly. :class:`CredentialAuditor`, one per API
process, keeps the events as ``credential_uses`` rows as they arrive (Prefect's event stream,
plus what Prefect stored while the API was away), and writes a run's entries once the run has
ended, so that an entry names every node that used the credential. A run that has not ended
``max_pending`` seconds (ten minutes) after its first unaudited use (a long run, one waiting for
an approval) gets an entry for the uses so far, and later uses get one of their own. Rows are
claimed by the same transaction that writes the entry: of several API replicas one writes it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import affected_rows, utcnow
from api.db.engine import Database
from api.models.credential_uses import CredentialUse
from api.models.identity import Tenant
from api.prefect import PrefectClient
from api.prefect import events as prefect_events
from api.prefect import runs as prefect_runs
from api.services import audit
from api.services.audit import AuditContext
from flows import CREDENTIAL_USED

log = logging.getLogger("gorax.credential_audit")

#: Run states after which a run uses no more credentials.
_SETTLED_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
_LIMITS = {"tenant_id": 36, "flow_run_id": 36, "credential": 100, "credential_type": 100, "node_id": 100}


@dataclass(frozen=True)
class Use:
    """A node of a run used a credential (names only)."""

    tenant_id: str
    flow_run_id: str
    credential: str
    credential_type: str
    node_id: str
    used_at: datetime


def use_of_event(event: Any) -> Use | None:
    """The use a ``gorax.credential.used`` event reports (None, logged, when it is malformed)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    fields: dict[str, Any] = {name: payload.get(name) for name in _LIMITS}
    if not all(isinstance(value, str) and 0 < len(value) <= _LIMITS[name] for name, value in fields.items()):
        log.warning("credential-use event %s is malformed: %r", event.id, payload)
        return None
    return Use(used_at=event.occurred, **fields)


async def record_uses(session: AsyncSession, uses: list[Use]) -> None:
    """Keep ``uses`` (a use already kept is left as it is)."""
    if not uses:
        return
    dialect = session.bind.dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    rows = [
        {
            "id": str(uuid.uuid4()),
            "tenant_id": u.tenant_id,
            "flow_run_id": u.flow_run_id,
            "credential": u.credential,
            "credential_type": u.credential_type,
            "node_id": u.node_id,
            "used_at": u.used_at,
        }
        for u in uses
    ]
    await session.execute(
        insert(CredentialUse)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["tenant_id", "flow_run_id", "credential", "node_id"])
    )


async def store_events(db: Database, events: list[Any]) -> int:
    """Keep the uses the events report, for tenants of this database; how many were new or known."""
    uses = [use for use in map(use_of_event, events) if use is not None]
    if not uses:
        return 0
    async with db.system_scope() as session:
        known = set(
            (await session.execute(select(Tenant.id).where(Tenant.id.in_({u.tenant_id for u in uses})))).scalars()
        )
        for use in uses:
            if use.tenant_id not in known:
                log.warning(
                    "credential use of run %s names tenant %s, which is not in this database",
                    use.flow_run_id,
                    use.tenant_id,
                )
        await record_uses(session, [u for u in uses if u.tenant_id in known])
        await session.commit()
    return sum(1 for u in uses if u.tenant_id in known)


async def latest_use(db: Database) -> datetime | None:
    """When the newest use kept happened."""
    async with db.system_scope() as session:
        return (await session.execute(select(func.max(CredentialUse.used_at)))).scalar()


# -- writing the audit entries ------------------------------------------------------------
def _tag(run: Any, prefix: str) -> str | None:
    return next((tag[len(prefix) :] for tag in (run.tags or []) if tag.startswith(prefix)), None)


def _settled(run: Any, oldest: datetime, *, now: datetime, grace: float, max_pending: float) -> bool:
    """Whether a run's uses so far can be written: it ended ``grace`` seconds ago (late events
    have arrived), it no longer exists, or its oldest use waited ``max_pending``."""
    if run is None or oldest <= now - timedelta(seconds=max_pending):
        return True
    state = run.state
    if state is None or state.type.value not in _SETTLED_STATES:
        return False
    return state.timestamp <= now - timedelta(seconds=grace)


async def audit_settled(
    db: Database,
    prefect: PrefectClient,
    *,
    now: datetime | None = None,
    grace: float = 5.0,
    max_pending: float = 600.0,
    batch: int = 200,
) -> int:
    """Write the audit entries of runs whose uses are complete; how many entries."""
    now = now or utcnow()
    async with db.system_scope() as session:
        pending = (
            await session.execute(
                select(CredentialUse.tenant_id, CredentialUse.flow_run_id, func.min(CredentialUse.used_at))
                .where(CredentialUse.audited_at.is_(None))
                .group_by(CredentialUse.tenant_id, CredentialUse.flow_run_id)
                .order_by(func.min(CredentialUse.used_at))
                .limit(batch)
            )
        ).all()
    if not pending:
        return 0
    runs = await prefect_runs.read_runs_by_id(prefect, {run_id for _, run_id, _ in pending})
    written = 0
    for tenant_id, run_id, oldest in pending:
        run = runs.get(run_id)
        if _settled(run, oldest, now=now, grace=grace, max_pending=max_pending):
            written += await _audit_run(db, tenant_id=tenant_id, run_id=run_id, run=run, now=now)
    return written


async def _audit_run(db: Database, *, tenant_id: str, run_id: str, run: Any, now: datetime) -> int:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        claimed = (
            await session.execute(
                update(CredentialUse)
                .where(
                    CredentialUse.tenant_id == tenant_id,
                    CredentialUse.flow_run_id == run_id,
                    CredentialUse.audited_at.is_(None),
                )
                .values(audited_at=now)
                .returning(
                    CredentialUse.credential,
                    CredentialUse.credential_type,
                    CredentialUse.node_id,
                    CredentialUse.used_at,
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
        owner = _tag(run, "tenant:") if run is not None else tenant_id
        if claimed and owner != tenant_id:
            # Only someone who can write to Prefect can send such an event; it is no use of
            # this tenant's credentials.
            log.warning(
                "credential uses of run %s name tenant %s, but the run belongs to %s: not audited",
                run_id,
                tenant_id,
                owner,
            )
            claimed = []
        by_credential: dict[str, list[Any]] = defaultdict(list)
        for row in claimed:
            by_credential[row.credential].append(row)
        for credential, rows in sorted(by_credential.items()):
            await audit.record(
                session,
                tenant_id=tenant_id,
                action="credential.used",
                context=AuditContext(actor_type="run", actor_id=run_id),
                resource_type="credential",
                resource_id=credential,
                details={
                    "credential": credential,
                    "type": rows[0].credential_type,
                    "execution_id": run_id,
                    "workflow_id": _tag(run, "workflow:") if run is not None else None,
                    "nodes": sorted({row.node_id for row in rows}),
                    "first_used_at": min(row.used_at for row in rows).isoformat(),
                },
            )
        await session.commit()
    return len(by_credential)


async def prune(db: Database, *, audited_before: datetime) -> int:
    """Forget uses audited before ``audited_before`` (Prefect will not report them again)."""
    async with db.system_scope() as session:
        result = await session.execute(
            delete(CredentialUse)
            .where(CredentialUse.audited_at < audited_before)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return affected_rows(result)


# -- the background job ---------------------------------------------------------------------
class CredentialAuditor:
    """Follows Prefect's ``gorax.credential.used`` events and writes settled runs' entries."""

    def __init__(
        self,
        db: Database,
        prefect: PrefectClient,
        *,
        settle_every: float = 3.0,
        grace: float = 5.0,
        max_pending: float = 600.0,
        catch_up: float = 600.0,
        keep: float = 86400.0,
    ) -> None:
        self.db = db
        self.prefect = prefect
        self.settle_every = settle_every
        self.grace = grace
        self.max_pending = max_pending
        # After a (re)connection, events Prefect stored up to this long before the newest use
        # kept are read again: they may have arrived while nobody listened.
        self.catch_up = timedelta(seconds=catch_up)
        self.keep = timedelta(seconds=keep)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start following events and writing entries (needs a Prefect API URL)."""
        if not prefect_events.server_configured():
            log.warning("no Prefect API URL: credential uses are not audited")
            return
        self._tasks = [
            asyncio.create_task(self._follow(), name="gorax-credential-uses"),
            asyncio.create_task(self._settle(), name="gorax-credential-audit"),
        ]

    async def stop(self) -> None:
        """Stop; uses not yet written stay stored for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _follow(self) -> None:
        backoff = 1.0
        while True:
            try:
                async with prefect_events.follow(prefect_events.named([CREDENTIAL_USED])) as stream:
                    await self._catch_up()
                    backoff = 1.0
                    async for event in stream:
                        await store_events(self.db, [event])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Prefect away or a database hiccup: follow again later
                log.warning("following credential uses failed (again in %.0fs): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _catch_up(self) -> None:
        now = utcnow()
        since = (await latest_use(self.db) or now) - self.catch_up
        flt = prefect_events.named([CREDENTIAL_USED], occurred=(since, now + timedelta(days=1)))
        async for page in prefect_events.read_events(self.prefect, flt):
            await store_events(self.db, page)

    async def _settle(self) -> None:
        last_prune = utcnow()
        while True:
            await asyncio.sleep(self.settle_every)
            try:
                await audit_settled(self.db, self.prefect, grace=self.grace, max_pending=self.max_pending)
                if utcnow() - last_prune > timedelta(hours=1):
                    last_prune = utcnow()
                    await prune(self.db, audited_before=last_prune - self.keep)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("writing credential-use audit entries failed (again in %.0fs): %s", self.settle_every, exc)
