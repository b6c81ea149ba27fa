"""How Gorax names what it creates in Prefect: the flow, deployments, work queues.

Deploy (control plane) and the runtime (sub-workflows) both need these names; they live here,
in one place, so that both always agree.
"""

from __future__ import annotations

import re

#: The one generic flow every workflow runs as.
FLOW_NAME = "run-graph"
#: The tenant of runs that name none (``gorax run`` of a graph file, deploys without a tenant).
DEFAULT_TENANT = "default"
_SLUG = re.compile(r"[^a-z0-9_-]+")


def slug(value: str) -> str:
    """A name part safe in deployment, queue and tag names."""
    cleaned = _SLUG.sub("-", value.strip().lower()).strip("-")
    if not cleaned:
        raise ValueError(f"{value!r} has no letters or digits to name a deployment with")
    return cleaned


def deployment_name(tenant: str | None, workflow: str) -> str:
    """``<tenant>--<workflow>``."""
    return f"{slug(tenant or DEFAULT_TENANT)}--{slug(workflow)}"


def work_queue_name(tenant: str | None) -> str:
    """The tenant's work queue in the Gorax work pool."""
    return f"tenant-{slug(tenant or DEFAULT_TENANT)}"
