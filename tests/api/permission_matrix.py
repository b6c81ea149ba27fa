"""Walk every route of the app and check its declared access rule against every role.

Reusable by any area that adds routes: as long as a router is listed in
``api.routes.ROUTE_MODULES``, ``tests/api/test_permissions.py`` covers it. A route without
``Requires(...)`` or ``Public()`` fails :func:`declared_rules`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from api.auth.deps import AccessRule, access_rules_of
from api.auth.permissions import Permission

# FastAPI's own documentation routes carry no Gorax rule and serve no tenant data.
_FRAMEWORK_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class RouteRule:
    """One method of one route and the permission it declares (None: public)."""

    method: str
    path: str
    permission: Permission | None

    def concrete_path(self) -> str:
        """The path with every parameter replaced by an id that exists nowhere."""
        return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), self.path)


def declared_rules(app: FastAPI) -> tuple[list[RouteRule], list[str]]:
    """Every (method, path) with its rule, and the routes that declare none or several."""
    rules: list[RouteRule] = []
    problems: list[str] = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        path = context.path
        if path in _FRAMEWORK_PATHS:
            continue
        found: list[AccessRule] = access_rules_of(context.dependant)
        for method in sorted(context.methods or ()):
            if method == "HEAD":
                continue
            if len(found) != 1:
                problems.append(f"{method} {path}: {len(found)} access rules {found!r}")
                continue
            rules.append(RouteRule(method, path, found[0].permission))
    return rules, problems
