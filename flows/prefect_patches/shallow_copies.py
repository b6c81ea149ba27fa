"""Each subscriber of an in-memory topic gets its own message without ``copy.deepcopy``.

Prefect's in-memory broker deep-copies every message for every subscriber (event persister,
triggers, task-run recorder, stream...). The payload is immutable bytes, so a new message with
its own attributes dict isolates subscribers the same way; attributes that are not plain
strings are still deep-copied.

Upstream: no upstream issue.
"""

from __future__ import annotations

import copy
from typing import Any

from prefect.server.utilities.messaging import memory


def _own_copy(message: memory.MemoryMessage) -> memory.MemoryMessage:
    attributes = message.attributes
    if attributes is not None and not all(type(v) is str for v in attributes.values()):
        attributes = copy.deepcopy(attributes)
    elif attributes is not None:
        attributes = dict(attributes)
    # data is bytes or str (immutable); retry_count is the subscriber's own
    return memory.MemoryMessage(message.data, attributes, message.retry_count)


def apply() -> None:
    """Replace the topic's publish with one that makes shallow copies (idempotent)."""
    if getattr(memory.Topic.publish, "_gorax_shallow", False):
        return

    async def publish(self: Any, message: memory.MemoryMessage) -> None:
        for subscription in self._subscriptions:
            await subscription.deliver(_own_copy(message))

    publish._gorax_shallow = True  # type: ignore[attr-defined]
    memory.Topic.publish = publish  # type: ignore[method-assign]
