"""Eject a stored workflow (its published version, or another) as a Prefect flow file."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, ValidationFailed
from api.services import workflows as service
from translator import GraphValidationError
from translator.eject import EjectedFlow, EjectError, eject_graph


async def stored_document(
    session: AsyncSession, *, tenant_id: str, workflow_id: str, version: int | None
) -> dict[str, Any]:
    """The ``gorax/graph@1`` document of a version: ``version``, else the published one."""
    workflow = await service.get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    number = version if version is not None else workflow.latest_version
    if number is None:
        raise Conflict(
            f"workflow {workflow_id!r} has no published version to eject: publish it, or name a version",
            details={"workflow_id": workflow_id},
        )
    stored = await service.get_version(session, tenant_id=tenant_id, workflow_id=workflow_id, number=number)
    return {"format": service.GRAPH_FORMAT, "name": workflow.name, "description": workflow.description, **stored.graph}


def eject_document(document: dict[str, Any]) -> EjectedFlow:
    """The ejected flow; ValidationFailed naming every node that cannot be ejected (or every
    problem of a graph that does not validate)."""
    try:
        return eject_graph(document)
    except EjectError as exc:
        raise ValidationFailed(
            str(exc),
            details={"nodes": [{"node_id": node_id, "type": slug} for node_id, slug in exc.nodes]},
        ) from None
    except GraphValidationError as exc:
        raise ValidationFailed(
            f"the graph is not valid: {len(exc.errors)} problem(s)",
            details={"errors": [error.to_dict() for error in exc.errors]},
        ) from None
