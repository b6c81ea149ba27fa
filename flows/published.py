"""The deployment of a tenant's published workflow, for a run that starts it as a sub-workflow.

A deployment's name is for people (it may change form between versions of Gorax); its tags
``tenant:<id>`` and ``workflow:<id>`` are what identifies it, and what keeps one tenant's runs
from starting another tenant's workflows.
"""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, FlowFilter, FlowFilterName

from flows.naming import FLOW_NAME, tenant_tag, workflow_tag


class WorkflowNotPublished(LookupError):
    """The tenant has no deployed workflow of that id."""


async def published_deployment(tenant: str | None, workflow: str) -> UUID:
    """The id of the deployment of ``tenant``'s workflow ``workflow``; WorkflowNotPublished if none."""
    async with get_client() as client:
        found = await client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            deployment_filter=DeploymentFilter(
                tags=DeploymentFilterTags(all_=[tenant_tag(tenant), workflow_tag(workflow)])
            ),
            limit=2,
        )
    if not found:
        raise WorkflowNotPublished(f"workflow {workflow!r} has no published version in this tenant")
    return found[0].id
