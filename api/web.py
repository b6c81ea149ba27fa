"""Serving the editor's built files (web/dist) with a single-page-app fallback."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
# Paths that belong to the API: never answered with the editor's index.html.
_API_PREFIXES = ("/api/", "/webhook/", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")


class SpaStaticFiles(StaticFiles):
    """Static files; unknown non-API paths get ``index.html`` so client routing works."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            request_path: str = scope.get("path", "")
            if exc.status_code != 404 or request_path.startswith(_API_PREFIXES):
                raise
            return await super().get_response("index.html", scope)


def web_app(dist: Path = WEB_DIST) -> SpaStaticFiles | None:
    """The static app for ``dist`` when it holds a build, else None."""
    if not (dist / "index.html").is_file():
        return None
    return SpaStaticFiles(directory=dist, html=True)
