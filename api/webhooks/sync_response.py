"""Synchronous webhook responses: run the deployment now, wait, answer with the output.

The delivery is stored as ``direct`` first. If Prefect cannot start the run, the delivery goes
back to the dispatcher's queue (``accepted``) and the sender gets the usual 202, so nothing is
lost. Past the timeout the answer is 202 with the execution id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import update

from api.db.base import utcnow
from api.db.engine import Database
from api.errors import GatewayTimeout, ResultUnavailable
from api.prefect import PrefectClient
from api.services.executions import run_output, start_run, status_of, wait_for_run
from api.webhooks.models import NewDelivery, WebhookDelivery

log = logging.getLogger("gorax.webhooks.sync")


async def _set(db: Database, delivery: WebhookDelivery | NewDelivery, **values: Any) -> None:
    # By id: a delivery stored by the writer (a plain insert) never learns its seq.
    async with db.tenant_scope(tenant_id=delivery.tenant_id) as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == delivery.tenant_id, WebhookDelivery.id == delivery.id)
            .values(**values)
        )
        await session.commit()


async def respond_after_run(
    db: Database,
    prefect: PrefectClient,
    delivery: WebhookDelivery | NewDelivery,
    deployment_id: str,
    timeout: float,
    requeue: Callable[[], None],
) -> JSONResponse:
    """Start the run of ``delivery``, wait up to ``timeout`` s, answer with its output."""
    try:
        run = await start_run(
            prefect,
            tenant_id=delivery.tenant_id,
            workflow_id=delivery.workflow_id,
            deployment_id=deployment_id,
            trigger=delivery.payload,
            trigger_type="webhook",
            parameters={"trigger_node": delivery.node_id},
        )
    except Exception as exc:
        log.warning("starting a run for delivery %s failed (%s); queued for dispatch", delivery.id, type(exc).__name__)
        await _set(db, delivery, status="accepted")
        requeue()
        return JSONResponse({"delivery_id": delivery.id, "queued": True}, status_code=202)
    await _set(db, delivery, status="dispatched", run_id=str(run.id), dispatched_at=utcnow(), attempts=1)
    try:
        final = await wait_for_run(prefect, run.id, timeout)
    except GatewayTimeout:
        return JSONResponse({"delivery_id": delivery.id, "execution_id": str(run.id)}, status_code=202)
    status = status_of(final.state)
    if status != "completed":
        message = final.state.message if final.state else None
        return JSONResponse(
            {
                "error": {
                    "code": "RUN_FAILED",
                    "message": f"the run ended {status}: {message or ''}".strip(),
                    "details": {"execution_id": str(run.id), "delivery_id": delivery.id},
                }
            },
            status_code=502,
        )
    try:
        output = await run_output(final)
    except ResultUnavailable as exc:
        return JSONResponse(
            {
                "error": {
                    "code": exc.code,
                    "message": exc.message,
                    "details": {**exc.details, "delivery_id": delivery.id},
                }
            },
            status_code=exc.status_code,
        )
    return JSONResponse(
        jsonable_encoder(output),
        status_code=200,
        headers={"X-Gorax-Execution-ID": str(run.id), "X-Gorax-Delivery-ID": delivery.id},
    )
