"""``/webhook/{token}``: the public endpoint senders deliver to (no /api/v1 prefix).

Answers 202 ``{delivery_id}`` once the delivery is stored; 200 ``{delivery_id, duplicate:
true}`` for a delivery seen before (its delivery id, or its signed content under another id)
and ``{..., filtered: true}`` when the trigger's filter is false; 401 with the reason for a bad
or stale signature; 400 for a body that is not JSON or nests too deeply; 413 past the trigger's
``max_body_bytes``; 429 ``QUOTA_EXCEEDED`` (with Retry-After) past the tenant's
``webhook_requests_per_minute`` quota, before the body is read. With ``?wait=true`` (or the trigger's ``respond: after_run``) it starts the
run itself and answers with the run's output, or 202 with the execution id past ``timeout``.
The router's lifespan runs the dispatcher (:mod:`api.webhooks.dispatcher`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect

from api.auth.deps import Public
from api.direct import direct
from api.errors import PayloadTooLarge
from api.prefect import get_prefect, prefect_of
from api.services import quotas
from api.webhooks import failures, service
from api.webhooks.automations import keep_requiring_tenants
from api.webhooks.dispatcher import Dispatcher
from api.webhooks.sync_response import respond_after_run

ROOT = True
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    prefect = prefect_of(app)
    dispatcher = Dispatcher(app.state.gorax.db, prefect, link_for=app.state.gorax.config.webhook_repair_after_seconds)
    app.state.webhook_dispatcher = dispatcher
    await dispatcher.start()
    # Automations built before triggers required their tenant get that filter now.
    upgrade = asyncio.create_task(keep_requiring_tenants(app.state.gorax.db, prefect))
    try:
        yield
    finally:
        upgrade.cancel()
        await dispatcher.stop()


router = APIRouter(tags=["webhooks"], lifespan=_lifespan)


def report_failed(request: Request, delivery: Any) -> None:
    """One ``gorax.webhook.delivery.failed`` event for a rejected delivery, sent in the background."""
    failures.emit_soon(
        get_prefect(request),
        [
            failures.event_of(
                delivery_id=delivery.id,
                tenant_id=delivery.tenant_id,
                workflow_id=delivery.workflow_id,
                webhook_id=delivery.webhook_id,
                node_id=delivery.node_id,
                failure=failures.BAD_SIGNATURE,
                reason=delivery.reason,
                occurred=delivery.received_at,
            )
        ],
    )


def wake_dispatcher(request: Request) -> None:
    """Tell this app's dispatcher that a delivery is waiting."""
    dispatcher = getattr(request.app.state, "webhook_dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the body is {declared} bytes; this webhook accepts at most {limit}", details={"limit": limit}
        )
    chunks, size = [], 0
    while True:  # the ASGI messages themselves: Starlette's stream() is an async generator
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is over {limit} bytes, the most this webhook accepts", details={"limit": limit})


def _max_body(webhook: Any) -> int:
    return int(webhook.config.get("max_body_bytes", 1048576))


def _direct(webhook: Any, deployment_id: str | None, wait: bool) -> bool:
    return (wait or webhook.config.get("respond") == "after_run") and deployment_id is not None


def outcome_response(outcome: service.Outcome) -> JSONResponse:
    """The answer for a stored delivery (202 accepted, 200 duplicate or filtered)."""
    if outcome.status == "duplicate":
        return JSONResponse(
            {"delivery_id": outcome.original_id or outcome.delivery.id, "duplicate": True}, status_code=200
        )
    if outcome.status == "filtered":
        return JSONResponse(
            {"delivery_id": outcome.delivery.id, "filtered": True, "reason": outcome.delivery.reason}, status_code=200
        )
    return JSONResponse({"delivery_id": outcome.delivery.id}, status_code=202)


class ReceiverParams(BaseModel):
    """The receiver's path and query parameters (validated here rather than as FastAPI
    parameters: solving three of them per delivery was a tenth of the receiver's CPU)."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=10, max_length=100, description="The webhook's URL token.")
    wait: bool = Field(default=False, description="Run now and answer with the run's output.")
    timeout: float = Field(default=30, gt=0, le=300, description="Seconds to wait with wait=true.")

    @classmethod
    def of(cls, request: Request) -> ReceiverParams:
        """The request's parameters; a bad one is a 422 naming it (``query.timeout``)."""
        values = {"token": request.path_params.get("token", "")}
        if request.scope.get("query_string"):
            query = request.query_params
            for name in ("wait", "timeout"):
                if name in query:
                    values[name] = query[name]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {**error, "loc": ("path" if error["loc"][0] == "token" else "query", *error["loc"])}
                    for error in exc.errors(include_url=False)
                ]
            ) from None


def _openapi_parameters() -> list[dict[str, Any]]:
    schema = ReceiverParams.model_json_schema()["properties"]
    return [
        {
            "name": name,
            "in": "path" if name == "token" else "query",
            "required": name == "token",
            "description": schema[name].pop("description"),
            "schema": schema[name],
        }
        for name in ("token", "wait", "timeout")
    ]


@direct
async def receive_webhook(request: Request) -> JSONResponse:
    """Receive a delivery: verify, filter, store durably, then dispatch (or run and wait)."""
    params = ReceiverParams.of(request)
    token, wait, timeout = params.token, params.wait, params.timeout
    db = request.app.state.gorax.db
    webhook, deployment_id = await service.find_by_token(db, token)
    state = request.app.state.gorax
    await quotas.check_webhook(db, state.limiter, tenant_id=webhook.tenant_id, config=state.config)
    body = await read_body(request, _max_body(webhook))
    headers = {k.lower(): v for k, v in request.headers.items()}
    for fresh in (False, True):
        if fresh:
            # The webhook or its signing secret changed after it was read (rotated,
            # republished, paused, a secret replaced): check the delivery again against what
            # they are now (a second change answers 503).
            webhook, deployment_id = await service.find_by_token(db, token, fresh=True)
            if len(body) > _max_body(webhook):
                raise _too_large(_max_body(webhook))
        try:
            outcome = await service.receive(
                db,
                webhook,
                method=request.method,
                headers=headers,
                query=dict(request.query_params) if request.scope.get("query_string") else {},
                body=body,
                direct=_direct(webhook, deployment_id, wait),
                recheck=fresh,
                on_rejected=lambda rejected: report_failed(request, rejected),
            )
            break
        except service.StaleWebhook:
            if fresh:
                raise
    direct = _direct(webhook, deployment_id, wait)
    if outcome.status == "accepted" and direct and deployment_id:
        return await respond_after_run(
            db, get_prefect(request), outcome.delivery, deployment_id, timeout, lambda: wake_dispatcher(request)
        )
    if outcome.status == "accepted":
        wake_dispatcher(request)
    return outcome_response(outcome)


for _method in _METHODS:  # one route per method so each has its own OpenAPI operation id
    router.add_api_route(
        "/webhook/{token}",
        receive_webhook,
        methods=[_method],
        status_code=202,
        response_model=dict[str, Any],
        dependencies=[Public()],
        operation_id=f"receive_webhook_{_method.lower()}",
        openapi_extra={"parameters": _openapi_parameters()},
    )
