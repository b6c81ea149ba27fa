"""Calls from a run to the Gorax API's internal endpoints (human tasks, maintenance).

A run authenticates as the worker principal with ``GORAX_WORKER_TOKEN``; the API's address is
``GORAX_API_URL``. Both reach a worker through its environment (the work pool's job variables);
a run that needs one that is not set fails naming it, and one that never calls the API needs
neither.
"""

from __future__ import annotations

from typing import Any

import httpx

from flows.settings import get_settings


async def post_internal(path: str, payload: dict[str, Any] | None = None, *, timeout: float = 30) -> Any:
    """POST to ``/api/v1/internal/<path>``; the decoded answer, or an error naming the call."""
    settings = get_settings()
    url = f"{settings.required_api_url()}/api/v1/internal/{path}"
    headers = {"Authorization": f"Bearer {settings.required_worker_token()}"}
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(url, json=payload, headers=headers)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # an answer that is not the API's error body: its start says enough
            message = response.text[:300]
        raise RuntimeError(f"POST {url} answered {response.status_code}: {message}")
    return response.json()
