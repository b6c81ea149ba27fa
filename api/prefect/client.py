"""The API's one Prefect client: opened with the app, handed to routes and services explicitly.

Routes take it as :data:`PrefectDep`; background services (the webhook dispatcher, the
human-task timer, the credential auditor) receive it when they start. Nothing sets Prefect's
client context: code that wants the app's client is given it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any

from fastapi import Depends
from prefect.client.orchestration import PrefectClient, get_client
from starlette.requests import HTTPConnection


async def open_client(stack: AsyncExitStack) -> PrefectClient:
    """A Prefect client (from the process's Prefect settings) that ``stack`` closes.

    Building a client is costly (an HTTP client and its TLS context), so an app opens one for
    its lifetime; opening it makes no request to Prefect.
    """
    return await stack.enter_async_context(get_client())


def prefect_of(app: Any) -> PrefectClient:
    """The Prefect client of a started app (for the lifespans of its routers)."""
    client: PrefectClient | None = app.state.gorax.prefect
    if client is None:
        raise RuntimeError("the app's Prefect client is not open: the app has not started")
    return client


def get_prefect(connection: HTTPConnection) -> PrefectClient:
    """The app's Prefect client (for a request or a WebSocket)."""
    return prefect_of(connection.app)


PrefectDep = Annotated[PrefectClient, Depends(get_prefect)]
