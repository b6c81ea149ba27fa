"""The task-run recorder drops events that are not of task runs before decoding them.

Prefect's recorder decodes every event (a webhook delivery, a flow run's state change) and then
drops all but ``prefect.task-run.*``; here it reads the event's name from the message's
attributes, where Prefect's publisher puts it, first. Messages without that attribute go to
Prefect's handler as before.

Upstream: https://github.com/PrefectHQ/prefect/issues/14578 (a filter for the recorder's
subscription, proposed when the recorder was written).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prefect.server.services import task_run_recorder as recorder


def apply() -> None:
    """Wrap the recorder's consumer with the filter (idempotent)."""
    if getattr(recorder.consumer, "_gorax_filtered", False):
        return
    original = recorder.consumer

    @asynccontextmanager
    async def consumer(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with original(*args, **kwargs) as handler:

            async def message_handler(message: Any) -> None:
                name = (message.attributes or {}).get("event")
                if isinstance(name, str) and not name.startswith("prefect.task-run"):
                    return
                await handler(message)

            yield message_handler

    consumer._gorax_filtered = True  # type: ignore[attr-defined]
    recorder.consumer = consumer
