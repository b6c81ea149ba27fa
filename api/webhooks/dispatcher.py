"""The dispatcher: stored deliveries -> ``gorax.webhook.received`` Prefect events, in order.

One background task per API process (started by the webhook router's lifespan). It reads
accepted deliveries by ``seq``, posts them as one batch to Prefect's ``/events`` endpoint and
marks them dispatched only after Prefect acknowledged the batch. While Prefect is unreachable
it retries with backoff; nothing is skipped, so order holds. The deliveries of a paused workflow
(accepted just before it was paused) are held, not sent, until it is resumed: its webhook
automations stay enabled while it is paused (:mod:`api.webhooks.automations`).

A delivery reaches a run by one route only: its event, then the workflow's automation, then
the run. The event id is the delivery's id (:func:`event_id`), so a batch sent twice (a crash
between acknowledge and commit) or an event posted again by ``gorax webhooks repair``
(:mod:`api.webhooks.repair`) is the *same* event: Prefect's event publisher drops an id it took
in the last five minutes, and its triggers service drops one it evaluated in the last thirty
(in memory, among its last 10,000 events; in Redis, all), so it starts one run.

The dispatcher also *links*: a dispatched delivery gets the id of the run its event started
(the run's ``trigger.delivery_id`` parameter), which the delivery history shows. It never
starts a run itself: a delivery whose event started none (a rare loss, e.g. an event taken by
Prefect just after it restarted, before its triggers subscribed) stays dispatched without a run
until an operator runs the repair, which checks for its run again under a lock and posts the
same event once more (docs/adr/0001-webhook-route.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, Text, and_, bindparam, cast, or_, select, update

from api.db.base import utcnow
from api.db.engine import Database
from api.models.workflows import Workflow
from api.prefect import PrefectClient
from api.prefect import events as prefect_events
from api.prefect import runs as prefect_runs
from api.prefect.automations import tenant_related
from api.webhooks.batching import writer_for
from api.webhooks.models import WebhookDelivery
from flows import workflow_tag

log = logging.getLogger("gorax.webhooks.dispatcher")

EVENT_NAME = "gorax.webhook.received"


def event_id(delivery_id: str) -> str:
    """The id of a delivery's Prefect event: the delivery's own id (a UUID), the same each time
    the event is posted, so Prefect treats a repost as the event it already has."""
    return delivery_id


def workflow_resource(workflow_id: str) -> str:
    """The Prefect resource id events of a workflow are about."""
    return f"gorax.workflow.{workflow_id}"


def events_json(deliveries: list[Any]) -> bytes:
    """The Prefect events of ``deliveries`` as one JSON array, each delivery's payload spliced in
    as the JSON text it was stored as (``payload`` a str, or None for no payload).

    Decoding every stored payload to encode it again was most of the dispatcher's CPU under a
    stream of deliveries, on the process that also receives them.
    """
    # The resource and related parts of each (workflow, node, webhook, tenant), as JSON text.
    about: dict[tuple[str, str, str, str], str] = {}
    parts = []
    for d in deliveries:
        key = (d.workflow_id, d.node_id, d.webhook_id, d.tenant_id)
        labels = about.get(key)
        if labels is None:
            resource = json.dumps(
                {
                    "prefect.resource.id": workflow_resource(d.workflow_id),
                    "gorax.trigger-node": d.node_id,
                    "gorax.webhook": d.webhook_id,
                    "gorax.tenant": d.tenant_id,
                }
            )
            labels = about[key] = f'"resource": {resource}, "related": {json.dumps([tenant_related(d.tenant_id)])}'
        payload = d.payload if d.payload not in (None, "null") else "{}"
        parts.append(
            f'{{"id": {json.dumps(event_id(d.id))}, "occurred": "{d.received_at.isoformat()}", '
            f'"event": "{EVENT_NAME}", {labels}, "payload": {payload}}}'
        )
    return ("[" + ", ".join(parts) + "]").encode()


class Dispatcher:
    """Sends accepted deliveries to Prefect; :meth:`wake` after storing one."""

    def __init__(
        self,
        db: Database,
        prefect: PrefectClient,
        *,
        batch_size: int = 200,
        max_backoff: float = 5.0,
        recover_grace: float = 2.0,
        link_for: float = 3600.0,
        coalesce: float = 0.02,
    ) -> None:
        self.db = db
        # The app's client: one for the dispatcher's life, as building one (a TLS context each)
        # cost more CPU than a post under a steady stream of deliveries.
        self.prefect = prefect
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        # After an outage, Prefect answers HTTP before its event consumers have subscribed;
        # events posted in that gap would reach no trigger. Wait this long once it is back.
        self.recover_grace = recover_grace
        # A delivery dispatched longer ago than this without a run is the repair's to look at
        # (webhook_repair_after_seconds): the loop stops asking Prefect for its run.
        self.link_for = link_for
        self.reconcile_every = 3.0
        self.coalesce = coalesce
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failures = 0

    def wake(self) -> None:
        """Something was stored: look now rather than at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._run(), name="gorax-webhook-dispatcher")

    async def stop(self) -> None:
        """Stop the loop (pending deliveries stay stored for the next start)."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _pending_query(self) -> Any:
        d = WebhookDelivery
        # The columns an event needs, as plain rows: loading whole deliveries (headers, raw
        # body) as ORM objects cost more CPU than posting them. The payload stays JSON text.
        query = (
            select(
                d.seq,
                d.id,
                d.received_at,
                d.tenant_id,
                d.workflow_id,
                d.node_id,
                d.webhook_id,
                cast(d.payload, Text).label("payload"),
            )
            .where(
                or_(
                    WebhookDelivery.status == "accepted",
                    # A synchronous delivery whose process died before starting its run.
                    and_(
                        WebhookDelivery.status == "direct",
                        WebhookDelivery.run_id.is_(None),
                        WebhookDelivery.received_at < utcnow() - timedelta(seconds=60),
                    ),
                )
            )
            .where(d.workflow_id.not_in(select(Workflow.id).where(Workflow.status == "paused")))
            .order_by(WebhookDelivery.seq)
            .limit(self.batch_size)
        )
        if self.db.dialect == "postgresql":
            # Several API replicas may dispatch: each claims rows no other one holds.
            query = query.with_for_update(skip_locked=True)
        return query

    async def _pending(self) -> list[Any]:
        query = self._pending_query()
        if self.db.dialect == "sqlite":
            # On the delivery writer's thread and connection: one hand-off instead of an
            # async session's (aiosqlite's thread and the ORM) on the loop receiving deliveries.
            return await writer_for(self.db).execute(  # type: ignore[union-attr]
                lambda conn: list(conn.execute(query).all())
            )
        async with self.db.system_scope() as session:
            return list((await session.execute(query)).all())

    def _mark_statement(self, deliveries: list[Any]) -> Any:
        return (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.seq.in_([d.seq for d in deliveries]), WebhookDelivery.status.in_(("accepted", "direct"))
            )
            .values(status="dispatched", dispatched_at=utcnow(), attempts=WebhookDelivery.attempts + 1)
        )

    async def _post(self, deliveries: list[Any]) -> None:
        await prefect_events.post_events(self.prefect, events_json(deliveries))

    async def dispatch_once(self) -> int:
        """Send one batch; returns how many were dispatched (raises when Prefect fails).

        On PostgreSQL the batch is claimed, posted and marked in one transaction: its rows stay
        locked (``FOR UPDATE SKIP LOCKED``) until they are marked, so replicas never send the
        same delivery twice. SQLite (one process) reads and marks in two short transactions: a
        read transaction held across the post could not become a write one after the receiver's
        commits.
        """
        if self.db.dialect != "postgresql":
            pending = await self._pending()
            if not pending:
                return 0
            await self._post(pending)
            # Through the delivery writer's connection: no lock fight with the receiver.
            mark = self._mark_statement(pending)
            await writer_for(self.db).execute(lambda conn: conn.execute(mark))  # type: ignore[union-attr]
            self.sent += len(pending)
            return len(pending)
        async with self.db.system_scope() as session:
            pending = list((await session.execute(self._pending_query())).all())
            if not pending:
                return 0
            await self._post(pending)
            await session.execute(self._mark_statement(pending))
            await session.commit()
        self.sent += len(pending)
        return len(pending)

    async def reconcile(self) -> int:
        """Link deliveries dispatched in the last ``link_for`` seconds to the runs their events
        started; returns how many were linked. Starts no run."""
        d = WebhookDelivery
        async with self.db.system_scope() as session:
            # Not whole deliveries (headers, raw body): this runs every few seconds while runs
            # are being created, on the process receiving deliveries.
            rows = list(
                (
                    await session.execute(
                        select(d.seq, d.id, d.workflow_id, d.received_at)
                        .where(
                            d.status == "dispatched",
                            d.run_id.is_(None),
                            d.dispatched_at > utcnow() - timedelta(seconds=self.link_for),
                        )
                        .order_by(d.seq)
                        .limit(2000)
                    )
                ).all()
            )
        if not rows:
            return 0
        linked = await find_runs(self.prefect, rows)
        if linked:
            await link_runs(self.db, linked)
        return len(linked)

    async def _run(self) -> None:
        backoff = 0.2
        outage = False
        loop = asyncio.get_running_loop()
        last_reconcile = 0.0
        while True:
            try:
                if outage and self.recover_grace:
                    await self._wait_until_reachable()
                    await asyncio.sleep(self.recover_grace)
                sent = await self.dispatch_once()
                outage, backoff = False, 0.2
                if sent:
                    if sent < self.batch_size and self.coalesce:
                        # Under a stream of deliveries, let the next batch fill a little:
                        # one post of many events costs Prefect and us far less than many posts.
                        await asyncio.sleep(self.coalesce)
                    continue  # drain the backlog before waiting
                if loop.time() - last_reconcile > self.reconcile_every:
                    last_reconcile = loop.time()
                    await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if not outage:
                    log.warning(
                        "dispatching webhook deliveries failed (%s: %s); retrying", type(exc).__name__, str(exc)[:300]
                    )
                outage = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def _wait_until_reachable(self) -> None:
        delay = 0.2
        while not await prefect_events.reachable(self.prefect):
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)


async def find_runs(prefect: PrefectClient, deliveries: list[Any]) -> dict[int, str]:
    """The runs the events of ``deliveries`` (rows with ``seq``, ``id``, ``workflow_id`` and
    ``received_at``) started, by the delivery's seq."""
    by_workflow: dict[str, list[Any]] = {}
    for row in deliveries:
        by_workflow.setdefault(row.workflow_id, []).append(row)
    found: dict[int, str] = {}
    for workflow_id, rows in by_workflow.items():
        runs = await _runs_by_delivery(prefect, workflow_id, min(row.received_at for row in rows))
        for row in rows:
            if row.id in runs:
                found[row.seq] = runs[row.id]
    return found


async def link_runs(db: Database, runs: dict[int, str]) -> None:
    """Record each delivery's run (by the delivery's seq)."""
    table: Table = WebhookDelivery.__table__  # type: ignore[assignment]  # declared as a FromClause
    statement = update(table).where(table.c.seq == bindparam("b_seq")).values(run_id=bindparam("b_run"))
    params = [{"b_seq": seq, "b_run": run_id} for seq, run_id in runs.items()]
    if db.dialect == "sqlite":
        # Through the delivery writer's connection: no lock fight with the receiver.
        await writer_for(db).execute(lambda conn: conn.execute(statement, params))  # type: ignore[union-attr]
        return
    async with db.system_scope() as session:
        await session.execute(statement, params)
        await session.commit()


async def _runs_by_delivery(prefect: PrefectClient, workflow_id: str, since: Any) -> dict[str, str]:
    """Flow runs of the workflow started by a webhook since ``since``, by delivery id (the
    automation passes the event's payload, whose ``delivery_id`` names the delivery, as the
    run's ``trigger`` parameter)."""
    flt = prefect_runs.run_filter(tags=[workflow_tag(workflow_id)], expected_after=since - timedelta(seconds=60))
    found: dict[str, str] = {}
    offset = 0
    while True:
        page = await prefect_runs.read_runs(prefect, flt, limit=200, offset=offset)
        for run in page:
            trigger = (run.parameters or {}).get("trigger")
            if isinstance(trigger, dict) and isinstance(trigger.get("delivery_id"), str):
                found[trigger["delivery_id"]] = str(run.id)
        if len(page) < 200 or offset > 10_000:
            return found
        offset += 200
