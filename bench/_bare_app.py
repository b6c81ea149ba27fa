"""A bare FastAPI app that does no work: the baseline of the webhook intake (``bench/webhooks.py``).

``POST`` to any path answers 202 with a small JSON body, as the intake does, without reading
the body, verifying, storing or any middleware. Served by the same uvicorn, with the same flags,
and driven by the same wrk script as the intake.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/{path:path}")
async def accept(path: str) -> JSONResponse:
    return JSONResponse({"accepted": True}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
