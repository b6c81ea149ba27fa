"""Direct routes: the busiest public endpoint served without FastAPI's per-request machinery.

``/webhook/{token}`` is the one path senders hammer. It stays an ordinary FastAPI route
(OpenAPI, the permission matrix, its declared ``Public()`` rule, the same endpoint function),
marked with :func:`direct`. At run time :class:`GoraxAPI` serves a request for such a route
itself: the route's own regex and methods match it, the route's declared access rules run, the
endpoint is called with the request, and an exception becomes the response the app's exception
handlers make of it. The app's user middleware (request ids, security and rate-limit headers,
metrics, access log, CORS) wraps it exactly as it wraps FastAPI.

What it skips is what cost a delivery CPU without doing anything for it: Starlette's
middleware stack (four layers each wrapping ``send``), the scan of the route table, dependency
solving and response-model handling (a direct endpoint returns a ``Response``). A route can be
direct only if it needs nothing solved: one parameter, the request, and ``Public()`` rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.deps import PublicAccess, access_rules_of

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def direct(endpoint: Endpoint) -> Endpoint:
    """Mark a route endpoint ``async def endpoint(request) -> Response`` to be served directly."""
    endpoint.__gorax_direct__ = True  # type: ignore[attr-defined]
    return endpoint


class _DirectRoute:
    """One path served directly: its regex, and the route context of each method."""

    def __init__(self, path_regex: Any, param_convertors: dict[str, Any]) -> None:
        self.path_regex = path_regex
        self.param_convertors = param_convertors
        self.methods: dict[str, tuple[RouteContext, list[PublicAccess]]] = {}

    def add(self, context: RouteContext) -> None:
        dependant = context.dependant
        rules = [rule for rule in access_rules_of(dependant) if isinstance(rule, PublicAccess)]
        endpoint = context.endpoint
        parameters = list(inspect.signature(endpoint).parameters) if endpoint is not None else []
        others = [d.call for d in dependant.dependencies if not isinstance(d.call, PublicAccess)]
        if len(parameters) != 1 or others or not rules:
            raise TypeError(
                f"{context.path} cannot be served directly: a direct route takes only "
                f"the request and declares only Public() (it takes {parameters}, "
                f"declares {rules} and depends on {others})"
            )
        for method in context.methods or ():
            self.methods[method] = (context, rules)

    def match(self, scope: Scope) -> tuple[RouteContext, list[PublicAccess]] | None:
        found = self.methods.get(scope["method"])
        if found is None:
            return None
        path, root = scope["path"], scope.get("root_path")
        if root and path.startswith(root):  # as Starlette matches: below the mount point
            path = path[len(root) :]
        matched = self.path_regex.match(path)
        if matched is None:
            return None
        scope["path_params"] = {
            name: self.param_convertors[name].convert(value) for name, value in matched.groupdict().items()
        }
        return found


class GoraxAPI(FastAPI):
    """FastAPI, serving routes marked :func:`direct` without its per-request machinery."""

    _direct_routes: list[_DirectRoute] | None = None
    _direct_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routes = self._direct_routes
            for route in self.build_direct_routes() if routes is None else routes:
                found = route.match(scope)
                if found is not None:
                    scope["app"] = self
                    # Where FastAPI records the matched route (the metrics read its template).
                    scope["fastapi"] = {"effective_route_context": found[0]}
                    scope["gorax.direct"] = found
                    assert self._direct_app is not None
                    await self._direct_app(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    def build_direct_routes(self) -> list[_DirectRoute]:
        """Collect the routes marked :func:`direct` (TypeError for one that cannot be) and wrap
        the direct path in the app's user middleware. Done on the first request."""
        routes: dict[str, _DirectRoute] = {}
        for context in iter_route_contexts(self.routes):
            if getattr(context.endpoint, "__gorax_direct__", False) and context.path_format is not None:
                route = routes.setdefault(
                    context.path_format, _DirectRoute(context.path_regex, context.param_convertors)
                )
                route.add(context)
        app: ASGIApp = self._serve_direct
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        self._direct_app = app
        self._direct_routes = list(routes.values())
        return self._direct_routes

    async def _serve_direct(self, scope: Scope, receive: Receive, send: Send) -> None:
        context, rules = scope["gorax.direct"]
        request = Request(scope, receive, send)
        try:
            for rule in rules:
                await rule(request)
            response = await context.endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None
