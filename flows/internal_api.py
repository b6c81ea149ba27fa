"""Calls from a run to the Gorax API's internal endpoints (human tasks, maintenance).

A run authenticates as the worker principal with ``GORAX_WORKER_TOKEN``; the API's address is
``GORAX_API_URL``. Both reach a worker through its environment (the work pool's job variables).
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from flows.settings import get_settings


def worker_token() -> str:
    """The bearer token of the worker principal (GORAX_WORKER_TOKEN, else the API's state file)."""
    token = os.environ.get("GORAX_WORKER_TOKEN")
    if token:
        return token
    # Written by the API on its first start (api/auth/secrets.py): same state directory.
    return (get_settings().state_dir / "worker.token").read_text().strip()


async def post_internal(path: str, payload: dict[str, Any] | None = None, *, timeout: float = 30) -> Any:
    """POST to ``/api/v1/internal/<path>``; the decoded answer, or an error naming the call."""
    url = f"{get_settings().effective_api_url}/api/v1/internal/{path}"
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(url, json=payload, headers={"Authorization": f"Bearer {worker_token()}"})
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # an answer that is not the API's error body: its start says enough
            message = response.text[:300]
        raise RuntimeError(f"POST {url} answered {response.status_code}: {message}")
    return response.json()
