"""How Gorax names what it creates in Prefect: the flow, deployments, work queues.

Deploy (control plane) and the runtime (sub-workflows) both need these names; they live here,
in one place, so that both always agree.
"""

from __future__ import annotations

import re

#: The one generic flow every workflow runs as.
FLOW_NAME = "run-graph"
#: Where deployments find that flow: a module path of the installed package (Prefect imports it
#: as a module, with no code to pull and no directory to change to), so a deployment runs on any
#: worker that has Gorax installed, wherever it was deployed from.
ENTRYPOINT = "flows.run_graph.run_graph"
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


def tenant_tag(tenant: str | None) -> str:
    """The tag every deployment and run of the tenant carries (what tenant isolation keys on);
    runs that name no tenant (None) are the default tenant's."""
    return f"tenant:{DEFAULT_TENANT if tenant is None else tenant}"


def workflow_tag(workflow: str) -> str:
    """The tag every deployment and run of the workflow carries."""
    return f"workflow:{workflow}"


#: The tag of a test run: a draft run from the editor, the API or ``gorax test``.
TEST_TAG = "gorax:test"


def tenant_test_tag(tenant: str | None) -> str:
    """The tenant tag of the tenant's test runs. Test runs carry it instead of
    :func:`tenant_tag`, so every production query (run lists, analytics, quotas, alerts) leaves
    them out without a filter of its own; reads by id accept either."""
    return f"test-tenant:{DEFAULT_TENANT if tenant is None else tenant}"


def workflow_test_tag(workflow: str) -> str:
    """The workflow tag of the workflow's test runs (instead of :func:`workflow_tag`)."""
    return f"test-workflow:{workflow}"


def drafts_deployment_name(tenant: str | None) -> str:
    """``<tenant>--drafts``: the tenant's one deployment of run_graph that test runs start from."""
    return f"{slug(tenant or DEFAULT_TENANT)}--drafts"


def work_queue_name(tenant: str | None) -> str:
    """The tenant's work queue in the Gorax work pool."""
    return f"tenant-{slug(tenant or DEFAULT_TENANT)}"


def tenant_runs_limit(tenant: str | None) -> str:
    """The Prefect global concurrency limit a tenant's runs take a slot of (its concurrent-runs quota)."""
    return f"gorax-tenant-{slug(tenant or DEFAULT_TENANT)}-runs"


def tenant_quota_variable(tenant: str | None) -> str:
    """The Prefect Variable mirroring the tenant's monthly run quota, for runs Prefect starts
    by itself (schedules, automations): ``{"runs_per_month": <n>}``; none when unlimited."""
    return f"gorax-quota--{slug(tenant or DEFAULT_TENANT)}"


#: The name of the Cancelled state of a run held back by its tenant's monthly run quota (such
#: runs are not counted as used).
OVER_QUOTA_STATE = "OverQuota"

#: The name of the Cancelled state of a scheduled run whose schedule (or workflow) was paused or
#: deleted after Prefect had queued it.
SCHEDULE_OFF_STATE = "ScheduleOff"
