"""The Gorax API application: ``uvicorn api.app:create_app --factory``.

On start it runs the database migrations; it serves the REST API under ``/api/v1``, the ops
endpoints (``/healthz``, ``/readyz``, ``/metrics``), OpenAPI at ``/docs``, and the editor's
built files at ``/`` when ``web/dist`` exists.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.auth.secrets import signing_key
from api.auth.tokens import TokenSigner
from api.bootstrap import bootstrap_first_tenant
from api.collab import CollabHooks
from api.config import GoraxApiSettings, get_api_settings
from api.db.engine import Database
from api.deadletters.service import Sweeper
from api.direct import GoraxAPI
from api.handlers import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.mcp import McpGateway
from api.middleware import RequestContextMiddleware
from api.observability import Metrics, configure_logging
from api.prefect import open_client
from api.prefect.setup import keep_setting_up
from api.ratelimit import RateLimiter
from api.routes import include_routers
from api.services import workflows as workflow_service
from api.services.credential_audit import CredentialAuditor
from api.state import AppState
from api.web import WEB_DIST, web_app
from flows import tracing
from flows.prefect_client import apply_prefect_settings

log = logging.getLogger("gorax.api")

#: The collector's thresholds in the API process (Python's default: 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)

__all__ = ["bootstrap_first_tenant", "create_app"]


def collab_hooks(state: AppState) -> CollabHooks:
    """What the collaboration server needs from the workflows: who may open a draft, and the
    stored graph that seeds a document that never held one."""

    async def authorize_workflow(principal: Any, workflow_id: str) -> None:
        async with state.db.tenant_scope(tenant_id=principal.tenant_id) as session:
            await workflow_service.get_workflow(session, tenant_id=principal.tenant_id, workflow_id=workflow_id)

    async def load_seed(workflow_id: str) -> dict[str, Any] | None:
        async with state.db.system_scope() as session:
            return await workflow_service.stored_graph(session, workflow_id=workflow_id)

    return CollabHooks(authorize_workflow=authorize_workflow, load_seed=load_seed)


def create_app(settings: GoraxApiSettings | None = None, *, web_dist: Path = WEB_DIST) -> FastAPI:
    """Build the API app for ``settings`` (default: the process settings, from ``GORAX_*``).

    ``settings.api`` tunes the HTTP layer; while the app runs, every Prefect client of the
    process talks to ``settings.prefect``. ``web_dist`` is the editor build served at ``/`` when
    it contains ``index.html``.
    """
    settings = settings or get_api_settings()
    config = settings.api
    configure_logging(settings.log_level, settings.log_max_line_bytes)
    # Off unless the standard OTEL_* variables and SENTRY_DSN ask for them.
    tracing.configure_tracing("gorax-api")
    tracing.configure_sentry("api")
    metrics = Metrics()
    state = AppState(
        settings=settings,
        config=config,
        db=Database(settings.resolved_database_url),
        signer=TokenSigner(signing_key(config), config.access_token_ttl_seconds),
        limiter=RateLimiter(config, config.redis_url),
        metrics=metrics,
        worker_token=settings.worker_token.get_secret_value() if settings.worker_token else None,
    )

    mcp = McpGateway(state)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Before any client is made; put back when the app ends (tests run several in a process).
        restore_prefect_settings = apply_prefect_settings(settings.prefect)
        await state.db.migrate()
        prefect_stack = AsyncExitStack()
        state.prefect = await open_client(prefect_stack)
        if state.worker_token is None:
            log.warning(
                "GORAX_WORKER_TOKEN is not set: no worker can reach the internal routes, "
                "so runs cannot record human tasks"
            )
        # Prefect gets what this install needs (the work pool, block types) once it answers.
        setup = asyncio.create_task(
            keep_setting_up(
                state.prefect,
                work_pool=settings.work_pool,
                worker_type=settings.stack.worker_type,
                api_url=settings.effective_api_url,
                worker_token=state.worker_token,
                dead_after_seconds=settings.worker.dead_after_seconds,
            )
        )
        # Workers report credential uses as Prefect events; this writes them to the audit log.
        auditor = CredentialAuditor(state.db, state.prefect)
        await auditor.start()
        # Triggers that could not become a run are kept as dead letters (api/deadletters).
        sweeper = Sweeper(
            state.db,
            state.prefect,
            every=config.dead_letter_sweep_seconds,
            after_seconds=config.dead_letter_after_seconds,
        )
        if config.dead_letter_sweep_seconds:
            await sweeper.start()
        # The MCP server's session manager (/mcp) runs as long as the app.
        mcp_stack = AsyncExitStack()
        await mcp_stack.enter_async_context(mcp.run())
        log.info("api started", extra={"database": state.db.dialect})
        # Everything loaded so far (modules, routes, models) lives as long as the process:
        # keep it out of the collector, whose full passes over it paused every request for
        # ~110 ms several times a second under a stream of webhook deliveries.
        gc.collect()
        gc.freeze()
        # A young collection every 700 new container objects ran ~80 times a second under a
        # stream of deliveries and promoted whatever requests had in flight, so a full pass
        # (~45 ms, over what lazy imports like the CEL parser left outside the frozen set) came
        # every ~1.5 s: ~9% of the process's CPU and most of its p99. Requests' objects are
        # freed by reference counting, not by the collector: let it run less often.
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            setup.cancel()
            await asyncio.gather(setup, return_exceptions=True)
            await auditor.stop()
            await sweeper.stop()
            await mcp_stack.aclose()
            await state.limiter.close()
            state.prefect = None
            await prefect_stack.aclose()
            await state.db.dispose()
            restore_prefect_settings()

    app = GoraxAPI(
        title="Gorax API",
        version="1",
        description="Visual workflow automation on Prefect: tenants, workflows, runs, triggers.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gorax = state
    app.state.collab_hooks = collab_hooks(state)
    app.state.mcp = mcp
    install_error_handlers(app)
    include_routers(app)
    # Innermost, so its 413 still gets CORS, request-id and security headers.
    app.add_middleware(BodyLimitMiddleware, config=config)
    if config.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origin_list,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"],
        )
    # Added last so it is outermost: ids, headers and the 500 body cover everything.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    static = web_app(web_dist)
    if static is not None:
        app.mount("/", static, name="web")
    return app
