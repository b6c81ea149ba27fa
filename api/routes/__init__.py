"""The API's route modules. Adding a router is one line in :data:`ROUTE_MODULES`.

Each module exposes ``router`` (a ``fastapi.APIRouter``). It is mounted under ``/api/v1``
unless the module sets ``ROOT = True`` (ops endpoints, public webhooks). Every route must
declare its access with ``Requires(Permission.X)`` or ``Public()`` from :mod:`api.auth.deps`;
tests/api/test_permissions.py fails on a route that does not.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from api.errors import ERROR_RESPONSES

API_PREFIX = "/api/v1"

ROUTE_MODULES: tuple[str, ...] = (
    "api.routes.ops",
    # Early: routes are matched in this order, and deliveries are the busiest public path.
    "api.routes.webhook_receiver",
    "api.routes.auth",
    "api.routes.mfa",
    "api.routes.sso",
    "api.routes.members",
    "api.routes.api_keys",
    "api.routes.audit",
    "api.routes.internal",
    "api.routes.workflows",
    "api.routes.imports",
    "api.routes.versions",
    "api.routes.testing",
    "api.routes.executions",
    "api.routes.execution_events",
    "api.routes.execution_logs",
    "api.routes.analytics",
    "api.routes.ops_dashboard",
    "api.routes.telemetry",
    "api.routes.quotas",
    "api.routes.variables",
    "api.routes.catalogue",
    "api.routes.expressions",
    "api.routes.mcp_sources",
    "api.routes.templates",
    "api.routes.credentials",
    "api.routes.oauth",
    "api.routes.webhooks",
    "api.routes.dead_letters",
    "api.routes.schedules",
    "api.routes.human_tasks",
    "api.routes.retention",
    "api.routes.alerts",
    "api.routes.mcp_tools",
    "api.routes.mcp",
    "api.collab.routes",
)


def include_routers(app: FastAPI) -> None:
    """Mount every module of :data:`ROUTE_MODULES` on ``app``."""
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        prefix = "" if getattr(module, "ROOT", False) else API_PREFIX
        app.include_router(module.router, prefix=prefix, responses=ERROR_RESPONSES)
